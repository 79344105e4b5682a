"""The scenarios of exercises 4-6: one set of settings, each run trained once."""

from __future__ import annotations

from dmlbook import explore, federated, scenarios
from dmlbook.sheet import SHEET


def test_ex6_scenario_is_the_sheets():
    s = scenarios.EX6_SCENARIO
    assert (s["n_nodes"], s["degree"], s["rounds"]) == (
        SHEET.dpsgd_nodes, SHEET.dpsgd_degree, SHEET.dpsgd_steps)
    defaults = explore.EX6.defaults()
    assert (defaults["n_nodes"], defaults["degree"], defaults["steps"]) == (
        s["n_nodes"], s["degree"], s["rounds"])


def test_panels_default_to_their_chapters_scenario():
    assert explore.EX4.defaults()["rounds"] == scenarios.EX4_SCENARIO["rounds"]
    ex5 = explore.EX5.defaults()
    for name in ("n_nodes", "delta", "delay", "until"):
        assert ex5[name] == scenarios.EX5_SCENARIO[name], name


def test_ex4_explorer_holds_the_tables_settings():
    levels = explore.EX4.grid["level"]
    table = {(m, lv) for m, lv in federated.COMPRESSIONS if m != "none"}
    shown = {(m, lv) for m, values in levels.items() for lv in values}
    assert {("quantize", 4), ("topk", 0.1), ("topk", 0.01)} <= shown & table
    assert {("quantize", 6), ("quantize", 3), ("quantize", 2)} <= shown


def test_a_run_is_trained_once_per_settings_and_seed():
    kw = dict(n_nodes=4, degree=2, rounds=2, eval_every=2)
    first = scenarios.dpsgd_run(**kw)
    assert scenarios.dpsgd_run(**kw) is first
    assert scenarios.dpsgd_run(seed=1, **kw) is not first
    assert first.ledger.totals().sent == 2 * 4 * 2 + 4 * 3  # 2 steps, then a naive all-reduce
    g = scenarios.gossip_run(n_nodes=4, until=2.0)
    assert scenarios.gossip_run(n_nodes=4, until=2.0, drop_prob=0.0) is g  # defaults filled in


def test_the_cache_is_bounded():
    cache = {}
    for i in range(scenarios.MAX_CACHED_RUNS + 5):
        scenarios._once(cache, i, lambda i=i: i * i)
    assert len(cache) == scenarios.MAX_CACHED_RUNS
    assert 0 not in cache and scenarios._once(cache, 3 + 5 + 60, lambda: None) == 68 * 68
