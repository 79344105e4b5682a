"""Gossip's contract, one test per behaviour that `make mutants` found unguarded.

The mutation run of gossip.py (benchmarks/README.md, "Mutation testing")
left these without a test.
"""

import numpy as np
import pytest

from dmlbook import gossip
from dmlbook.gossip import PeerSampler


@pytest.mark.parametrize("sampling", ["uniform", "balanced"])
def test_peer_sampler_counts_each_nodes_messages(sampling):
    sampler = PeerSampler(6, sampling, np.random.default_rng(0), shared_seed=3)
    for i, times in enumerate([0, 1, 2, 5, 1, 3]):
        for _ in range(times):
            sampler.next(i)
    assert sampler.sent.tolist() == [0, 1, 2, 5, 1, 3]


def test_balanced_sampler_gives_every_node_one_kth_message():
    # The k-th message of every node goes to a different node: one each.
    n = 7
    sampler = PeerSampler(n, "balanced", np.random.default_rng(0), shared_seed=1)
    for _ in range(12):
        receivers = sorted(sampler.next(i) for i in range(n))
        assert receivers == list(range(n))


def test_peer_sampler_names_sampling():
    with pytest.raises(ValueError, match=r"^sampling must be one of 'uniform', 'balanced', "
                                         r"got 'round robin'$"):
        PeerSampler(4, "round robin", np.random.default_rng(0), shared_seed=0)
