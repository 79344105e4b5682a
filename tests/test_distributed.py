"""The same D-PSGD loop on 4 real gloo processes equals the in-process engine."""

import pytest

from dmlbook.distributed import run_dpsgd_distributed
from dmlbook.dpsgd import run_dpsgd


@pytest.mark.parametrize("topology, degree", [("ring", 2), ("complete", 3)])
def test_four_processes_match_the_simulator(topology, degree):
    kw = dict(rounds=4, topology=topology, degree=degree, lr=0.1, batch_size=16, seed=0)
    real = run_dpsgd_distributed(4, **kw)
    sim = run_dpsgd(n_nodes=4, progress=False, **kw)
    assert real.params.shape == sim.nodes.params.shape
    assert (real.params - sim.nodes.params).abs().max().item() < 1e-5
    assert real.ledger.totals() == sim.ledger.totals()
    assert real.ledger.totals().sent == 4 * 4 * degree


def test_bad_world_size():
    with pytest.raises(ValueError, match="world_size"):
        run_dpsgd_distributed(1)
