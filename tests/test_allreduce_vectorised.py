"""The vectorised all-reduces (#27.3) against the member-by-member originals.

The ring's chunks move as one tensor operation per step and the naive
all-reduce's receivers are summed at once; both must give what the original
loops gave: the same sums (bit for bit for the ring, to rounding for the
naive one), and the same ledger, message by message.
"""

import numpy as np
import pytest
import torch

from dmlbook import allreduce, collectives
from dmlbook.faults import Faults
from dmlbook.ledger import Ledger
from dmlbook.units import MAX_LEDGER_RECORDS


def ring_by_members(grads, ring):
    """The original: a Python list of chunks per member, one message at a time."""
    m = len(ring)
    chunks = [list(torch.tensor_split(grads[w].clone(), m)) for w in ring]
    messages = []
    for phase in ("reduce-scatter", "all-gather"):
        for s in range(m - 1):
            offset = -s if phase == "reduce-scatter" else 1 - s
            outgoing = [(k, (k + offset) % m) for k in range(m)]
            payloads = [chunks[k][c].clone() for k, c in outgoing]
            messages += [(ring[k], ring[(k + 1) % m], 4 * p.numel())
                         for (k, _), p in zip(outgoing, payloads)]
            for (k, c), payload in zip(outgoing, payloads):
                if phase == "reduce-scatter":
                    chunks[(k + 1) % m][c] = chunks[(k + 1) % m][c] + payload
                else:
                    chunks[(k + 1) % m][c] = payload
    return torch.cat(chunks[0]), messages


@pytest.mark.parametrize("n, P, ring", [(5, 23, [0, 1, 2, 3, 4]), (6, 4, [5, 0, 3, 1]),
                                        (3, 1, [2, 0, 1]), (8, 40, [7, 1, 2, 0, 4, 6])])
def test_ring_is_the_member_by_member_ring(n, P, ring):
    grads = torch.randn(n, P, generator=torch.Generator().manual_seed(n * P))
    want, messages = ring_by_members(grads, ring)
    ledger = Ledger(n)
    got = collectives.ring_allreduce(grads, ring, round=1, ledger=ledger,
                                     alive=np.ones(n, bool))
    assert torch.equal(got, want)
    c = ledger.columns()
    assert list(zip(c["sender"], c["receiver"], c["nbytes"])) == messages


def test_ring_stalls_on_a_lost_chunk_at_the_same_step():
    grads = torch.randn(6, 30)
    ledger = Ledger(6)
    out = collectives.ring_allreduce(grads, list(range(6)), round=2, ledger=ledger,
                                     alive=np.ones(6, bool),
                                     faults=Faults(drop_prob=0.3, seed=1))
    assert out is None
    c = ledger.columns()
    assert len(c["sender"]) % 6 == 0 and not c["delivered"][-6:].all()
    assert c["delivered"][:-6].all()


def test_naive_means_are_each_receivers_own_mean():
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(9, 17, generator=g, dtype=torch.float64)
    sending = np.array([0, 2, 3, 5, 8])
    src, dst = collectives.naive_messages(sending, sending)
    ok = np.random.default_rng(0).random(len(src)) > 0.4
    got = collectives.naive_means(grads, sending, src, dst, ok)
    for row, w in enumerate(sending):
        arrived = np.concatenate([[w], src[ok & (dst == w)]])
        torch.testing.assert_close(got[row], grads[arrived].mean(0))


def test_naive_messages_in_the_original_order():
    members = np.array([4, 1, 7, 2])
    sending = np.array([4, 7, 2])
    src, dst = collectives.naive_messages(sending, members)
    assert src.tolist() == [s for s in sending for d in members if d != s]
    assert dst.tolist() == [d for s in sending for d in members if d != s]


def test_counts_only_and_the_record_count_checked_up_front():
    n = 200
    rounds = MAX_LEDGER_RECORDS // (2 * n * (n - 1)) + 1
    with pytest.raises(ValueError, match="counts_only"):
        allreduce.train_data_parallel("ring", n_workers=n, rounds=rounds, progress=False)
    full = allreduce.train_data_parallel("ring", n_workers=5, rounds=2, progress=False)
    counts = allreduce.train_data_parallel("ring", n_workers=5, rounds=2, progress=False,
                                           counts_only=True)
    assert torch.equal(full.worker_params, counts.worker_params)
    assert counts.ledger.totals() == full.ledger.totals()
    with pytest.raises(ValueError, match="counts_only"):
        allreduce.train_data_parallel("ring", counts_only="yes")


def test_ring_steps_are_bounded_up_front(monkeypatch):
    # Issue #27: MAX_NODE_STEPS alone let a ring run 9,765 rounds of 1,024
    # workers (hours); rounds x 2 (n - 1) ring steps are now bounded.
    from dmlbook import units

    assert allreduce.MAX_RING_STEPS == units.MAX_RING_STEPS
    prepare = allreduce.prepare
    monkeypatch.setattr(allreduce, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    n = 1024
    rounds = units.MAX_RING_STEPS // (2 * (n - 1)) + 1
    with pytest.raises(ValueError, match=rf"^rounds must keep rounds x 2 \(n_workers - 1\) ring "
                                         rf"steps \(MAX_RING_STEPS\) <= {units.MAX_RING_STEPS:,}, "
                                         rf"got {rounds * 2 * (n - 1):,}$"):
        allreduce.train_data_parallel("ring", n_workers=n, rounds=rounds, counts_only=True)
    monkeypatch.setattr(allreduce, "MAX_RING_STEPS", 2 * 4 * 3)  # 3 rounds of 5 workers
    with pytest.raises(ValueError, match="got 32"):
        allreduce.train_data_parallel("ring", n_workers=5, rounds=4)
    monkeypatch.setattr(allreduce, "prepare", prepare)
    allreduce.train_data_parallel("naive", n_workers=5, rounds=4, progress=False)  # ring only
    monkeypatch.setattr(allreduce, "prepare", lambda *a, **k: (_ for _ in ()).throw(
        RuntimeError("accepted")))
    with pytest.raises(RuntimeError, match="accepted"):  # at the bound
        allreduce.train_data_parallel("ring", n_workers=5, rounds=3)


@pytest.mark.parametrize("scheme, per_round", [("naive", 5 * 4), ("ps", 2 * 5), ("ring", 2 * 5 * 4)])
def test_run_messages_are_bounded_up_front(monkeypatch, scheme, per_round):
    # Issue #27: MAX_NODE_STEPS alone let a naive all-reduce of 4,096 workers
    # run 2,441 rounds of 16.8 M messages (27 minutes); the run's messages are
    # now bounded by MAX_RUN_MESSAGES, counts-only ledger or not.
    from dmlbook import ledger, units

    prepare = allreduce.prepare
    monkeypatch.setattr(allreduce, "prepare", lambda *a, **k: pytest.fail("not refused up front"))
    n = units.MAX_NODES
    rounds = units.MAX_RUN_MESSAGES // (n * (n - 1)) + 1  # 120
    with pytest.raises(ValueError, match=rf"^rounds must keep rounds x {n * (n - 1):,} messages a "
                                         rf"round <= {units.MAX_RUN_MESSAGES:,} \(MAX_RUN_MESSAGES\), "
                                         rf"got {rounds * n * (n - 1):,}$"):
        allreduce.train_data_parallel("naive", n_workers=n, rounds=rounds, counts_only=True)
    monkeypatch.setattr(ledger, "MAX_RUN_MESSAGES", 3 * per_round)  # 3 rounds of 5 workers
    with pytest.raises(ValueError, match=rf"got {4 * per_round}$"):
        allreduce.train_data_parallel(scheme, n_workers=5, rounds=4, counts_only=True)
    monkeypatch.setattr(allreduce, "prepare", prepare)
    run = allreduce.train_data_parallel(scheme, n_workers=5, rounds=3, counts_only=True,
                                        progress=False)  # at the bound
    assert run.ledger.totals().sent == 3 * per_round
