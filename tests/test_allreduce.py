import numpy as np
import pytest
import torch

from dmlbook import allreduce
from dmlbook.allreduce import train_data_parallel
from dmlbook.distributed import run_dpsgd_distributed
from dmlbook.faults import Faults


@pytest.fixture(scope="module")
def runs():
    return {s: train_data_parallel(s, n_workers=5, rounds=6, lr=0.3, progress=False)
            for s in allreduce.SCHEMES}


def test_three_schemes_compute_the_same_parameters(runs):
    diff = allreduce.max_parameter_difference(*runs.values())
    assert diff.shape == (7,) and diff.max() < 1e-5
    assert not torch.equal(runs["ps"].params[0], runs["ps"].params[-1])  # it did train
    assert all(r.updated[1:] == [True] * 6 for r in runs.values())


def test_schemes_equal_centralized_sgd_on_the_union_of_batches(runs):
    """One round = one SGD step on the workers' batches together (equal-size batches)."""
    from dmlbook import data
    from dmlbook.engine import FlatModel, NodeData, seeded_generator
    from dmlbook.models import make_model

    d = data.load_digits(seed=0)
    nd = NodeData(d.X_train, d.y_train, data.split(d.y_train, 5, seed=0))
    flat = FlatModel(make_model("mlp", seed=0))
    x = flat.initial.clone().requires_grad_()
    X, y = nd.batch(seeded_generator(0), 32)
    loss = flat.loss(x, X.flatten(0, 1), y.flatten())
    (g,) = torch.autograd.grad(loss, x)
    assert torch.allclose(runs["ring"].params[1], x.detach() - 0.3 * g, atol=1e-6)


def test_torch_distributed_all_reduce_agrees():
    real = run_dpsgd_distributed(4, algorithm="allreduce", rounds=3, lr=0.3, batch_size=32)
    ours = train_data_parallel("ring", n_workers=4, rounds=3, lr=0.3, progress=False)
    assert real.snapshots.shape == (4, ours.params[0].numel())
    assert (real.snapshots - torch.stack(ours.params)).abs().max() < 1e-5
    # Every process ends with the same parameters.
    assert (real.params - real.params[0]).abs().max() == 0


@pytest.mark.parametrize("n", [2, 3, 4, 7])
def test_ledger_counts_equal_the_formulas(n):
    rounds = 2
    for scheme in allreduce.SCHEMES:
        res = train_data_parallel(scheme, n_workers=n, rounds=rounds, progress=False)
        M = res.params[0].numel() * 4
        sent = res.ledger.per_node("sent", nbytes=True) / rounds
        received = res.ledger.per_node("received", nbytes=True) / rounds
        formula = allreduce.per_node_round_bytes(scheme, n, M)
        totals = res.ledger.totals()
        if scheme == "ps":
            assert sent[n] == received[n] == formula["server"] == n * M
            assert set(sent[:n]) == set(received[:n]) == {M}
            assert totals.sent == rounds * 2 * n
        elif scheme == "naive":
            assert set(sent) == set(received) == {(n - 1) * M}
            assert totals.sent == rounds * n * (n - 1)
        else:
            # 2(n-1) chunk messages per node; in total each step moves one whole model.
            assert totals.sent == rounds * 2 * n * (n - 1)
            assert totals.bytes_sent == rounds * 2 * (n - 1) * M
            chunk = -(-res.params[0].numel() // n) * 4
            assert np.all(np.abs(sent - formula["worker"]) <= 2 * chunk)
            assert np.all(np.abs(received - sent) <= 2 * chunk)
        traffic = allreduce.traffic_per_round(res)
        assert traffic["worker"] == sent[:n].max()


def test_busiest_link_and_round_time():
    M = 85_098 * 4
    assert allreduce.busiest_link_bytes("ps", 16, M) == 32 * M
    assert allreduce.busiest_link_bytes("naive", 16, M) == 15 * M
    assert allreduce.busiest_link_bytes("ring", 16, M) == pytest.approx(30 / 16 * M)
    # Hand-worked: 16 workers, ring, 1 Gbit/s: 1.875 * 340,392 B * 8 / 1e9 s.
    assert allreduce.round_time_s("ring", 16, 85_098, 1e9) == pytest.approx(
        1.875 * 340_392 * 8 / 1e9)
    with pytest.raises(ValueError, match="link_bps"):
        allreduce.round_time_s("ring", 16, 85_098, 0)
    with pytest.raises(ValueError, match="scheme"):
        allreduce.busiest_link_bytes("tree", 4, 1.0)


def test_worker_crash_parameter_server_goes_on_with_the_rest():
    res = train_data_parallel("ps", n_workers=4, rounds=8, faults=Faults(crash_at={2: 4}),
                              progress=False)
    assert all(res.updated[1:])
    per_round = res.ledger.per_round()
    assert list(per_round[1:4]) == [8] * 3 and list(per_round[4:]) == [6] * 5
    assert res.test_acc[-1] > res.test_acc[3]


def test_server_crash_stops_training():
    res = train_data_parallel("ps", n_workers=4, rounds=8, faults=Faults(crash_at={4: 4}),
                              progress=False)
    assert res.updated[1:4] == [True] * 3 and not any(res.updated[4:])
    assert all(torch.equal(p, res.params[3]) for p in res.params[4:])
    # The workers still send their gradients; none arrives.
    assert res.ledger.totals().lost == 4 * 5


def test_ring_stalls_until_rebuilt():
    res = train_data_parallel("ring", n_workers=4, rounds=10, ring_rebuild_rounds=3,
                              faults=Faults(crash_at={1: 4}), progress=False)
    assert res.updated[1:] == [True] * 3 + [False] * 3 + [True] * 4
    # After the rebuild the ring has 3 members: 2 * 3 * 2 chunk messages per round.
    assert res.ledger.per_round()[-1] == 12


def test_naive_allreduce_survives_a_worker_crash():
    res = train_data_parallel("naive", n_workers=4, rounds=6, faults=Faults(crash_at={0: 2}),
                              progress=False)
    assert all(res.updated[1:])
    # Detected at once (detect_rounds=0): the 3 live workers send to the 2 other live ones.
    assert list(res.ledger.per_round()[1:]) == [12] + [3 * 2] * 5


@pytest.mark.parametrize("kw, param", [
    ({"scheme": "tree"}, "scheme"), ({"n_workers": 0}, "n_workers"), ({"rounds": 0}, "rounds"),
    ({"lr": float("nan")}, "lr"), ({"ring_rebuild_rounds": -1}, "ring_rebuild_rounds"),
    ({"batch_size": 1.5}, "batch_size"), ({"detect_rounds": -1}, "detect_rounds"),
    ({"failover_rounds": 0.5}, "failover_rounds"), ({"failover": "yes"}, "failover"),
    ({"faults": Faults(straggler_prob=0.1)}, "straggler_prob"),
    ({"faults": Faults(crash_at={3: 1})}, "crash_at"),
    ({"faults": "none"}, "faults"),
])
def test_bad_input(kw, param):
    kwargs = {"scheme": "ps", "n_workers": 2, "rounds": 1, "progress": False, **kw}
    scheme = kwargs.pop("scheme")
    with pytest.raises(ValueError, match=param):
        train_data_parallel(scheme, **kwargs)


def test_naive_waits_for_a_crashed_worker_until_its_timeout():
    """Hand-worked: 4 workers, worker 0 dies at round 2, detected after 2 rounds."""
    res = train_data_parallel("naive", n_workers=4, rounds=6, detect_rounds=2,
                              faults=Faults(crash_at={0: 2}), progress=False)
    # Rounds 2 and 3 wait (3 live senders x 3 others, the 3 to worker 0 lost); then 3 x 2.
    assert res.updated[1:] == [True, False, False, True, True, True]
    assert list(res.ledger.per_round()[1:]) == [12, 9, 9, 6, 6, 6]
    assert res.ledger.totals().lost == 3 + 3
    assert torch.equal(res.params[3], res.params[1])


@pytest.mark.parametrize("scheme", allreduce.SCHEMES)
def test_every_message_lost_nothing_changes(scheme):
    """drop_prob=1: exact counts of what is sent in each scheme, and no update anywhere."""
    n, rounds = 4, 3
    res = train_data_parallel(scheme, n_workers=n, rounds=rounds,
                              faults=Faults(drop_prob=1.0), progress=False)
    per_round = {"ps": n, "naive": n * (n - 1), "ring": n}[scheme]  # ring: first step only
    assert list(res.ledger.per_round()[1:]) == [per_round] * rounds
    assert res.ledger.totals().delivered == 0
    if scheme == "naive":
        # Each worker averages only its own gradient: the copies drift apart.
        assert all(res.updated[1:])
        assert all(not torch.equal(res.worker_params[0], res.worker_params[w])
                   for w in range(1, n))
    else:
        assert not any(res.updated)
        assert torch.equal(res.worker_params, res.params[0].expand(n, -1))


def test_ring_with_message_loss_stalls_exactly_the_rounds_with_a_lost_chunk():
    n, rounds = 4, 8
    res = train_data_parallel("ring", n_workers=n, rounds=rounds,
                              faults=Faults(drop_prob=0.05, seed=3), progress=False)
    c = res.ledger.columns()
    stalled = 0
    for r in range(1, rounds + 1):
        in_round = c["round"] == r
        sent, lost = int(in_round.sum()), int((in_round & ~c["delivered"]).sum())
        # n messages per step; the round stops after the step with a loss.
        assert sent % n == 0
        assert res.updated[r] == (lost == 0)
        assert sent == (2 * n * (n - 1) if lost == 0 else sent)
        stalled += lost > 0
    assert 0 < stalled < rounds  # this seed shows both cases
    # Every worker holds the same model: a stalled ring updates nobody.
    assert (res.worker_params - res.worker_params[0]).abs().max() == 0


def test_ps_lost_reply_leaves_that_workers_model_as_it_was():
    n = 8
    res = train_data_parallel("ps", n_workers=n, rounds=1, faults=Faults(drop_prob=0.5, seed=1),
                              progress=False)
    c = res.ledger.columns()
    up = c["receiver"] == n
    down = c["sender"] == n
    assert up.sum() == n and down.sum() == n  # the server replies to every member
    got = c["receiver"][down & c["delivered"]]
    lost = c["receiver"][down & ~c["delivered"]]
    assert len(got) and len(lost)
    assert torch.equal(res.worker_params[got], res.params[1].expand(len(got), -1))
    assert torch.equal(res.worker_params[lost], res.params[0].expand(len(lost), -1))
    # The server averaged exactly the gradients that arrived; up and down draws differ.
    assert not np.array_equal(c["delivered"][up], c["delivered"][down])


@pytest.mark.parametrize("scheme", allreduce.SCHEMES)
def test_every_worker_crashed_ends_cleanly(scheme):
    res = train_data_parallel(scheme, n_workers=3, rounds=6,
                              faults=Faults(crash_at={0: 3, 1: 3, 2: 3}), progress=False)
    assert res.rounds == [0, 1, 2]
    assert res.stopped == "every worker had crashed by round 3; the run ends there"
    assert all(res.updated[1:])


def test_parameter_server_failover_a_worker_takes_over_with_its_model():
    """Hand-worked: 4 workers, the server (node 4) dies at round 4, takeover after 1 round."""
    res = train_data_parallel("ps", n_workers=4, rounds=7, failover=True, failover_rounds=1,
                              faults=Faults(crash_at={4: 4}), progress=False)
    # Rounds 1-3: 4 up + 4 down. Round 4: 4 gradients to a dead server, lost.
    # Rounds 5-7: worker 0 serves: 3 up + 3 down (its own gradient stays local).
    assert list(res.ledger.per_round()[1:]) == [8, 8, 8, 4, 6, 6, 6]
    assert res.updated[1:] == [True, True, True, False, True, True, True]
    assert res.failover_round == 5 and res.server == 0
    assert res.ledger.totals().lost == 4
    # The model continues from where the dead server left it (worker 0 held it).
    assert torch.equal(res.params[4], res.params[3])
    assert not torch.equal(res.params[5], res.params[4])  # and trains on from it
    assert (res.worker_params - res.params[-1]).abs().max() == 0
    without = train_data_parallel("ps", n_workers=4, rounds=7, faults=Faults(crash_at={4: 4}),
                                  progress=False)
    assert not any(without.updated[4:]) and without.failover_round is None


def test_alpha_beta_round_time_and_crossover():
    M, n, bps, alpha = 85_098 * 4, 16, 1e9, 1e-3
    # alpha is paid by the sender (one-port): the one server's n workers push at once
    # (one alpha, overlapped), then the server sends n replies one after another.
    assert [allreduce.messages_on_busiest_link(s, n) for s in allreduce.SCHEMES] == [17, 15, 30]
    # Hand-worked ring: 30 steps of (1 ms + 340,392 B / 16 * 8 / 1e9 s).
    assert allreduce.round_time_s("ring", n, 85_098, bps, latency_s=alpha) == pytest.approx(
        30 * (1e-3 + 340_392 / 16 * 8 / 1e9))
    assert allreduce.round_time_s("ps", n, 85_098, bps, latency_s=alpha) == pytest.approx(
        17e-3 + 32 * M * 8 / 1e9)
    # Crossover: 1 ms * 1e9 b/s / 8 * 16/14 / 4 B = 35,714.29 parameters.
    star = allreduce.ring_beats_naive_above_params(n, bps, alpha)
    assert star == pytest.approx(1e-3 * 1e9 / 8 * 16 / 14 / 4)
    t = lambda s, p: allreduce.round_time_s(s, n, p, bps, latency_s=alpha)  # noqa: E731
    assert t("ring", int(star) + 1) < t("naive", int(star) + 1)
    assert t("ring", int(star) - 1) > t("naive", int(star) - 1)
    assert allreduce.ring_beats_naive_above_params(2, bps, alpha) == float("inf")
    assert allreduce.ring_beats_naive_above_params(8, bps, 0.0) == 0
    with pytest.raises(ValueError, match="latency_s"):
        allreduce.round_time_s("ring", 4, 10, bps, latency_s=-1)


def test_compute_profile_shapes_and_bounds():
    prof = allreduce.compute_profile((2, 64), repeats=3)
    assert prof.worker_counts == (2, 64)
    assert len(set(prof.worker_gradient_s)) == 1 and prof.worker_gradient_s[0] > 0
    assert all(s > 0 for s in prof.server_aggregate_s)
    with pytest.raises(ValueError, match="worker_counts"):
        allreduce.compute_profile((8192,))
    with pytest.raises(ValueError, match="repeats"):
        allreduce.compute_profile((2,), repeats=1000)


def test_setup_summary_counts_the_data_each_worker_holds():
    s = allreduce.setup_summary(4)
    assert s["n_params"] == 2410  # 64*32+32 + 32*10+10 : the digits MLP
    assert s["train"] == 1438 and s["test"] == 359
    assert (s["examples_min"], s["examples_max"]) == (359, 360)  # 1438 = 2*359 + 2*360
    assert s["classes_max"] <= 10


def test_failure_figure_gives_every_run_its_own_style_and_marker():
    from types import SimpleNamespace

    from dmlbook import plotting
    runs = {f"run {i}": SimpleNamespace(rounds=[0, 1, 2], test_acc=[0.1, 0.5, 0.5])
            for i in range(6)}  # identical curves: only style and marker tell them apart
    ax = plotting.plot_failures(runs, crash_round=1).axes[0]
    styles = {(str(line.get_linestyle()), line.get_marker(), line.get_color())
              for line in ax.get_lines() if line.get_label().startswith("run")}
    assert len(styles) == 6
    fig = plotting.plot_round_time_vs_model_size(16, 1e9, 1e-3, mark_params=85_098)
    assert len({line.get_marker() for line in fig.axes[0].get_lines()[:3]}) == 3


def test_compute_profile_bounds_its_worker_counts(monkeypatch):
    # Issue #27: compute_profile took any number of worker counts.
    from dmlbook.units import MAX_WORKER_COUNTS

    assert MAX_WORKER_COUNTS == 64
    prof = allreduce.compute_profile((2,) * 64, repeats=1)
    assert len(prof.server_aggregate_s) == 64
    with pytest.raises(ValueError, match=r"^worker_counts must be a sequence of 1 to 64 worker "
                                         r"counts \(MAX_WORKER_COUNTS\)"):
        allreduce.compute_profile((2,) * 65, repeats=1)
    for bad in (5, "248", iter([2, 4]), ()):
        with pytest.raises(ValueError, match="^worker_counts must be a sequence"):
            allreduce.compute_profile(bad, repeats=1)
    with pytest.raises(ValueError, match=r"^worker_counts must be a whole number >= 1 and "
                                         r"<= 4,096, got 4097"):
        allreduce.compute_profile((2, 4097), repeats=1)
    # The largest count's gradients are copied (k, P): k x P within MAX_STACKED_PARAMS.
    monkeypatch.setattr(allreduce, "MAX_STACKED_PARAMS", 4 * 2410)
    assert allreduce.compute_profile((2, 4), repeats=1).worker_counts == (2, 4)
    with pytest.raises(ValueError, match=r"^worker_counts must keep the largest worker count x "
                                         r"model parameters \(MAX_STACKED_PARAMS\) <= 9,640, "
                                         r"got 12,050"):
        allreduce.compute_profile((2, 5), repeats=1)


def test_traffic_vs_workers_bounds_its_sweep(monkeypatch):
    from dmlbook.units import MAX_SWEEP_WORKER_ROUNDS

    assert MAX_SWEEP_WORKER_ROUNDS == 4096
    train = allreduce.train_data_parallel
    monkeypatch.setattr(allreduce, "train_data_parallel",
                        lambda *a, **k: pytest.fail("not refused up front"))
    with pytest.raises(ValueError, match=r"^worker_counts must keep the sum of worker counts x "
                                         r"rounds \(MAX_SWEEP_WORKER_ROUNDS\) <= 4,096, "
                                         r"got 4,098"):
        allreduce.traffic_vs_workers((1000, 1049), rounds=2)
    # The runs train on the digits' 1,438 training examples: one a worker at least
    # (the error used to name n_nodes, a parameter the caller never passed).
    with pytest.raises(ValueError, match=r"^worker_counts must be a whole number >= 1 and "
                                         r"<= 1,438, got 1439"):
        allreduce.traffic_vs_workers((2, 1439), rounds=1)
    with pytest.raises(ValueError, match=r"^worker_counts must be a sequence of 1 to 64"):
        allreduce.traffic_vs_workers((2,) * 65, rounds=1)
    monkeypatch.setattr(allreduce, "train_data_parallel", train)
    monkeypatch.setattr(allreduce, "MAX_SWEEP_WORKER_ROUNDS", 12)
    table, model_bytes = allreduce.traffic_vs_workers((2, 4), rounds=2)
    assert model_bytes == 2410 * 4
    # Per round: a PS worker sends one gradient; the naive worker n - 1; the
    # ring's busiest 2 (n - 1) chunks of a model cut into n (603, 603, 602, 602):
    # the counts-only ledgers give what full ones give.
    assert table["PS worker"] == [model_bytes, model_bytes]
    assert table["PS server"] == [2 * model_bytes, 4 * model_bytes]
    assert table["naive worker"] == [model_bytes, 3 * model_bytes]
    full = allreduce.traffic_per_round(allreduce.train_data_parallel(
        "ring", n_workers=4, rounds=2, progress=False))
    assert table["ring worker"] == [model_bytes, full["worker"]] == [9640, (4 * 603 + 2 * 602) * 4]
    with pytest.raises(ValueError, match=r"<= 12, got 14"):
        allreduce.traffic_vs_workers((2, 5), rounds=2)
