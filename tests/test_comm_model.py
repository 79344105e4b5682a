"""The book's one alpha-beta model (dmlbook.comm_model), checked against hand-worked rounds."""

import math

import pytest

from dmlbook import comm_model as cm

M = 85_098 * 4  # exercise 1's LeNet in float32, bytes
NET = cm.Network(link_bps=1e9, alpha_s=1e-3)
BETA = 8 / 1e9


def test_single_server_round_by_hand():
    # 16 workers push at once (one alpha each, overlapped), the server's incoming
    # link carries 16 M; then the one server sends 16 models one after another.
    r = cm.ps_round(16, M, NET)
    assert r.seconds == pytest.approx((1e-3 + 16 * M * BETA) + 16 * (1e-3 + M * BETA))
    assert (r.alphas, r.bytes) == (17, 32 * M)
    assert r.name == "parameter server (one server)"
    assert [p.busiest for p in r.phases] == ["a server receiving", "a server sending"]


def test_naive_worker_pays_n_minus_one_alphas():
    r = cm.naive_allreduce_round(16, M, NET)
    assert r.seconds == pytest.approx(15 * (1e-3 + M * BETA))
    assert r.alphas == 15 and r.latency_s == pytest.approx(15e-3)


def test_ring_by_hand():
    r = cm.ring_allreduce_round(16, M, NET)
    assert r.seconds == pytest.approx(30 * (1e-3 + M / 16 * BETA))
    assert r.bandwidth_s == pytest.approx(30 / 16 * M * BETA)


def test_sharded_server_li_et_al():
    # k = 4 servers, 16 workers, no latency: push is bounded by a server's
    # incoming link (16 M / 4), pull by a server's outgoing link (16 M / 4).
    net0 = cm.Network(link_bps=1e9)
    r = cm.ps_round(16, M, net0, servers=4)
    assert r.seconds == pytest.approx(2 * 4 * M * BETA)
    assert r.name == "parameter server (4 servers)"
    # k = n servers: each phase is one model through a worker's link.
    r16 = cm.ps_round(16, M, net0, servers=16)
    assert r16.seconds == pytest.approx(2 * M * BETA)
    # Which node binds depends on alpha: with many servers a worker's k sends do.
    big_alpha = cm.ps_round(16, 1.0, cm.Network(link_bps=1e9, alpha_s=1.0), servers=16)
    assert big_alpha.phases[0].busiest == "a worker sending" and big_alpha.phases[0].alphas == 16
    # More servers never slow the bandwidth term down.
    times = [cm.ps_round(16, M, net0, servers=k).seconds for k in (1, 2, 4, 8, 16, 32)]
    assert times == sorted(times, reverse=True)


def test_sharded_ps_closes_the_gap_to_the_ring_one_server_does_not():
    # No latency, 16 workers: one server is 2nM against the ring's 2(n-1)M/n.
    one = cm.round_time("ps", 16, M, cm.Network(1e9)).seconds
    ring = cm.round_time("ring", 16, M, cm.Network(1e9)).seconds
    assert one > 8 * ring
    # With k = n servers a worker's link carries M each way per round: 2M
    # against the ring's 2(n-1)M/n, within a factor n/(n-1) of the ring.
    k16 = cm.round_time("ps", 16, M, cm.Network(1e9), servers=16).seconds
    assert k16 == pytest.approx(ring * 16 / 15)


def test_round_time_s_and_crossover_agree():
    star = cm.ring_beats_naive_above_params(16, 1e9, 1e-3)
    assert star == pytest.approx(1e-3 / BETA * 16 / 14 / 4)
    t = lambda s, p: cm.round_time_s(s, 16, p, 1e9, latency_s=1e-3)  # noqa: E731
    assert t("ring", math.ceil(star) + 1) < t("naive", math.ceil(star) + 1)
    assert t("ring", int(star) - 1) > t("naive", int(star) - 1)
    assert cm.ring_beats_naive_above_params(2, 1e9, 1e-3) == math.inf


def test_counts_per_node():
    assert cm.bytes_sent_per_node("ps", 8, 10.0, servers=2) == {"server": 40.0, "worker": 10.0}
    assert cm.messages_sent_per_node("ps", 8, servers=2) == {"server": 8, "worker": 2}
    assert cm.messages_sent_per_node("naive", 8) == {"worker": 7}
    assert cm.messages_sent_per_node("ring", 8) == {"worker": 14}
    assert cm.busiest_link_bytes("ring", 8, 8.0) == pytest.approx(14.0)
    assert cm.messages_on_busiest_link("ps", 8) == 9


@pytest.mark.parametrize("call, name", [
    (lambda: cm.Network(link_bps=0), "link_bps"),
    (lambda: cm.Network(link_bps=1e9, alpha_s=-1), "latency_s"),
    (lambda: cm.ps_round(4, M, NET, servers=0), "servers"),
    (lambda: cm.round_time("ring", 4, M, NET, servers=2), "servers"),
    (lambda: cm.round_time("tree", 4, M, NET), "scheme"),
    (lambda: cm.naive_allreduce_round(0, M, NET), "n_workers"),
    (lambda: cm.ring_allreduce_round(4, -1, NET), "model_bytes"),
    (lambda: cm.messages_sent_per_node("naive", 4, servers=3), "servers"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
