"""The collectives: naive all-reduce, ring all-reduce and the ring of models."""

import numpy as np
import pytest
import torch

from dmlbook.collectives import naive_allreduce, ring_allreduce, ring_allreduce_models
from dmlbook.engine import Nodes, gossip
from dmlbook.faults import STREAM_RING, Faults
from dmlbook.ledger import Ledger
from dmlbook.models import make_model
from dmlbook.topology import make_topology


def spread(nodes, seed=0):
    """Give every node a different model, so that the all-reduce has work to do."""
    g = torch.Generator().manual_seed(seed)
    nodes.params = nodes.params + 0.1 * torch.randn(nodes.params.shape, generator=g)
    return nodes


def test_naive_allreduce():
    nodes = spread(Nodes(make_model("logreg"), 6))
    mean = nodes.params.mean(0)
    ledger = Ledger(6)
    naive_allreduce(nodes, round=1, ledger=ledger)
    assert ledger.totals().sent == 6 * 5
    assert torch.allclose(nodes.params, mean.expand(6, -1), atol=1e-6)
    assert nodes.consensus_distance() < 1e-6


def test_naive_allreduce_with_a_crashed_node():
    nodes = spread(Nodes(make_model("logreg"), 4))
    x = nodes.params.clone()
    ledger = Ledger(4)
    naive_allreduce(nodes, round=2, ledger=ledger, faults=Faults(crash_at={3: 1}))
    assert ledger.totals().sent == 3 * 3 and ledger.totals().delivered == 3 * 2
    assert torch.allclose(nodes.params[0], x[:3].mean(0), atol=1e-6)
    assert torch.equal(nodes.params[3], x[3])


def test_naive_allreduce_records_every_pair_grouped_by_receiver():
    nodes = spread(Nodes(make_model("logreg"), 3))
    ledger = Ledger(3)
    naive_allreduce(nodes, round=7, ledger=ledger)
    c = ledger.columns()
    assert list(zip(c["receiver"], c["sender"])) == [(0, 1), (0, 2), (1, 0), (1, 2),
                                                     (2, 0), (2, 1)]
    assert set(c["round"]) == {7} and c["delivered"].all()
    assert (c["nbytes"] == nodes.payload_bytes).all()


def test_naive_allreduce_with_loss_averages_what_arrived():
    # Node 0 of 3: whatever its delivered mask says, its row is the mean of its own
    # model and the models that reached it, counted from the ledger.
    nodes = spread(Nodes(make_model("logreg"), 3))
    x = nodes.params.clone()
    ledger = Ledger(3)
    naive_allreduce(nodes, round=1, ledger=ledger, faults=Faults(drop_prob=0.5, seed=3))
    c = ledger.columns()
    for i in range(3):
        got = [i] + [int(s) for s, r, ok in zip(c["sender"], c["receiver"], c["delivered"])
                     if r == i and ok]
        assert torch.allclose(nodes.params[i], x[got].mean(0), atol=1e-6)


def test_naive_allreduce_equals_mixing_on_the_complete_graph():
    """The closed form gives what D-PSGD's exchange on the complete graph gives."""
    for faults in (Faults(), Faults(drop_prob=0.3, crash_at={4: 0}, seed=1)):
        a = spread(Nodes(make_model("logreg"), 6))
        b = Nodes(make_model("logreg"), 6)
        b.params = a.params.clone()
        la, lb = Ledger(6), Ledger(6)
        naive_allreduce(a, round=2, ledger=la, faults=faults)
        gossip(b, make_topology("complete", 6), round=2, ledger=lb, faults=faults,
               active=faults.alive(2, 6))
        assert torch.allclose(a.params, b.params, atol=1e-6)
        for f in Ledger.FIELDS:
            assert np.array_equal(la.columns()[f], lb.columns()[f])


def _ring_by_hand(grads, ring, *, round, alive, faults):
    """The ring all-reduce written plainly, chunk by chunk, message by message: what
    any faster implementation must reproduce bit for bit (same sums in the same order,
    same ledger records, same loss draws)."""
    m = len(ring)
    chunks = [list(torch.tensor_split(grads[w].clone(), m)) for w in ring]
    records = []
    for step in range(2 * (m - 1)):
        reduce = step < m - 1
        s = step if reduce else step - (m - 1)
        sent = []
        for k in range(m):
            c = (k - s) % m if reduce else (k + 1 - s) % m
            sent.append((k, c, chunks[k][c].clone()))
        receivers = np.array([ring[(k + 1) % m] for k in range(m)])
        ok = alive[receivers].copy()
        if faults.drop_prob > 0:
            draw = np.random.default_rng([faults.seed, round, STREAM_RING + step]).random(m)
            ok &= draw >= faults.drop_prob
        for (k, c, payload), arrived in zip(sent, ok):
            if alive[ring[k]]:
                records.append((round, ring[k], ring[(k + 1) % m],
                                payload.numel() * payload.element_size(), bool(arrived)))
        if not all(ok[k] for k in range(m) if alive[ring[k]]) or not alive[list(ring)].all():
            return None, records
        for k, c, payload in sent:
            dst = (k + 1) % m
            chunks[dst][c] = chunks[dst][c] + payload if reduce else payload
    return torch.cat(chunks[0]), records


@pytest.mark.parametrize("m, p", [(2, 5), (3, 7), (4, 4), (5, 23), (7, 3)])
@pytest.mark.parametrize("drop_prob", [0.0, 0.2])
def test_ring_allreduce_is_the_chunk_by_chunk_ring_bit_for_bit(m, p, drop_prob):
    g = torch.Generator().manual_seed(m * 100 + p)
    grads = torch.randn(m + 1, p, generator=g)
    ring = list(range(1, m + 1))[::-1]  # not in id order, and node 0 not a member
    alive = np.ones(m + 1, dtype=bool)
    faults = Faults(drop_prob=drop_prob, seed=5)
    for round in (1, 2, 3):
        ledger = Ledger(m + 1)
        got = ring_allreduce(grads, ring, round=round, ledger=ledger, alive=alive,
                             faults=faults)
        want, records = _ring_by_hand(grads, ring, round=round, alive=alive, faults=faults)
        c = ledger.columns()
        assert list(zip(c["round"].tolist(), c["sender"].tolist(), c["receiver"].tolist(),
                        c["nbytes"].tolist(), c["delivered"].tolist())) == records
        if want is None:
            assert got is None
        else:
            assert torch.equal(got, want)
            assert torch.allclose(got, grads[ring].sum(0), atol=1e-5)


def test_ring_of_one_member_is_its_own_vector():
    grads = torch.arange(6.0).reshape(2, 3)
    ledger = Ledger(2)
    out = ring_allreduce(grads, [1], round=1, ledger=ledger, alive=np.ones(2, bool))
    assert torch.equal(out, grads[1]) and len(ledger) == 0


def test_ring_allreduce_models_averages_every_model_in_2n_n_minus_1_messages():
    nodes = spread(Nodes(make_model("logreg"), 5))
    mean = nodes.params.mean(0)
    ledger = Ledger(5)
    ring_allreduce_models(nodes, round=4, ledger=ledger)
    assert ledger.totals().sent == 2 * 5 * 4 == ledger.totals().delivered
    assert torch.allclose(nodes.params, mean.expand(5, -1), atol=1e-6)
    assert nodes.consensus_distance() < 1e-6


def test_naive_allreduce_of_diverged_models_names_them():
    nodes = spread(Nodes(make_model("logreg"), 4))
    nodes.params[2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^diverged at round 3; .*\(the models: no longer "
                                         r"finite\)$"):
        naive_allreduce(nodes, round=3, ledger=Ledger(4))


def test_each_ring_step_draws_its_losses_from_its_own_stream(monkeypatch):
    """Losses of different ring steps are independent: step s uses STREAM_RING + s."""
    n = 5
    streams = []
    original = Faults.arrives
    monkeypatch.setattr(Faults, "arrives", lambda self, round, receivers, alive, stream:
                        streams.append(stream) or original(self, round, receivers, alive, stream))
    grads = torch.randn(n, 11)
    faults = Faults(drop_prob=1e-12, seed=1)
    total = ring_allreduce(grads, list(range(n)), round=2, ledger=Ledger(n),
                           alive=np.ones(n, bool), faults=faults)
    torch.testing.assert_close(total, grads.sum(0))
    assert streams == [STREAM_RING + s for s in range(2 * (n - 1))]
