"""The week in one table: closed forms, hand-worked numbers, and a real run's ledger."""

import pytest

from dmlbook import allreduce, messages, week

M = 85_098 * 4  # LeNet at 32 bit: 340,392 bytes


def rows(**kw):
    return {r.key: r for r in week.week_table(week.Scenario(**kw) if kw else None)}


def test_the_stated_scenario_by_hand():
    t = rows()
    assert week.Scenario().model_bytes == M == 340_392
    assert t["fl"].messages == {"server": 128, "client": 1}
    assert t["fl"].bytes == {"server": 128 * M, "client": M}
    assert t["ps"].bytes == {"server": 128 * M, "worker": M}
    assert t["naive"].messages == {"worker": 127} and t["naive"].bytes == {"worker": 127 * M}
    assert t["ring"].messages == {"worker": 254}
    assert t["ring"].bytes["worker"] == pytest.approx(2 * 127 * M / 128)  # 675,465.75 B
    assert t["gossip"].messages == {"node": 1} and t["gossip"].bytes == {"node": M}
    assert t["dpsgd"].messages == {"node": 8} and t["dpsgd"].bytes == {"node": 8 * M}
    assert [r.busiest for r in t.values()] == ["server", "server", "worker", "worker",
                                               "node", "node"]


@pytest.mark.parametrize("n, degree", [(2, 1), (16, 4), (128, 8), (1000, 10)])
def test_rows_agree_with_the_totals_of_messages_py(n, degree):
    t = rows(n_nodes=n, degree=degree)
    assert t["naive"].messages["worker"] * n == messages.allreduce_messages(n, "naive")
    assert t["ring"].messages["worker"] * n == messages.allreduce_messages(n, "ring")
    assert t["dpsgd"].messages["node"] * n == messages.dpsgd_messages(
        n, degree, 1, final_allreduce=None)
    # The ring moves the least per node once n > 2; the PS server the most.
    if n > 2:
        assert t["ring"].busiest_bytes < t["naive"].busiest_bytes < t["ps"].busiest_bytes


@pytest.mark.parametrize("scheme", ["ps", "naive", "ring"])
def test_rows_agree_with_a_real_runs_ledger(scheme):
    result = allreduce.train_data_parallel(scheme, n_workers=8, rounds=1, seed=0)
    n_params = result.params[0].numel()
    row = rows(n_nodes=8, n_params=n_params, degree=2)[scheme]
    sent = result.ledger.per_node("sent", nbytes=True)  # one round
    if scheme == "ps":
        assert list(sent) == [row.bytes["worker"]] * 8 + [row.bytes["server"]]
    elif scheme == "naive":
        assert list(sent) == [row.bytes["worker"]] * 8
    else:
        # The ring's chunks differ by one parameter when 8 does not divide the model:
        # the table's closed form is the mean over the workers.
        assert sent.mean() == pytest.approx(row.bytes["worker"], rel=1e-12)


def test_each_row_names_a_chapter():
    assert {r.chapter for r in week.week_table()} == {
        "chapters/ex1_fl_bandwidth", "chapters/ex3_allreduce", "chapters/ex5_gossip",
        "chapters/ex6_dpsgd"}


@pytest.mark.parametrize("kw, name", [
    (dict(n_nodes=1), "n_nodes"), (dict(n_nodes=2.5), "n_nodes"), (dict(n_params=0), "n_params"),
    (dict(bits_per_param=-32), "bits_per_param"), (dict(degree=0), "degree"),
    (dict(n_nodes=8, degree=8), "degree"), (dict(n_nodes=9, degree=3), "even"),
])
def test_bad_scenario(kw, name):
    with pytest.raises(ValueError, match=name):
        week.Scenario(**kw)


def test_bad_table_input():
    with pytest.raises(ValueError, match="scenario"):
        week.week_table({"n_nodes": 128})
