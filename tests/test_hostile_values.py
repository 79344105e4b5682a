"""The value classes of the second hostile probe (issue #27 part 2), over the public API.

Numeric strings, ``complex``, 0-d arrays and tensors, ``uint8`` / ``int16`` /
``float16`` / ``np.str_`` / ``np.bool_``, ``10**400``, ``5e-324``, ``1e308``,
``Fraction``, ``Decimal``, and each bound exactly and bound + 1. Every call
gives a ``ValueError`` (or ``TypeError``) that names the parameter, or a result
whose numbers are all finite. And the promise of :mod:`dmlbook.units`: a NumPy
scalar (or a ``Fraction``) that holds a valid number gives the same result as
the plain Python number, because the checked value is the one used.

Generated with hypothesis, derandomized (the same examples on every run), and
small: the module runs in well under a minute.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile import assert_finite

from dmlbook import bandwidth, compression, costs, explore, gossip, messages, topology, units, week
from dmlbook.plotting import series_style

VALUE_CLASSES = ["3", "3.5", " 7 ", 1j, complex(3, 0), np.array(3), np.array(2.5),
                 torch.tensor(3), torch.tensor(2.5), np.uint8(200), np.uint8(0), np.int16(-3),
                 np.int16(20_000), np.float16(2.5), np.float16(np.inf), np.str_("3"),
                 np.bool_(True), 10**400, -(10**400), 5e-324, 1e308, -1e308, Fraction(7, 2),
                 Decimal("3"), Decimal("NaN"), math.nan, math.inf, None, True, 0, -1]
SETTINGS = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))

# (function, fixed keyword arguments, {parameter: its documented maximum or None}).
CALCULATORS = [
    (costs.affordable_rounds, dict(budget_usd=100, n_params=1000, clients_per_round=5,
                                   usd_per_gib=0.03),
     {"budget_usd": units.MAX_USD, "n_params": 10**12, "clients_per_round": 10**12,
      "usd_per_gib": units.MAX_USD_PER_GIB, "bits_per_param": units.MAX_BITS_PER_PARAM}),
    (costs.fl_bill, dict(n_params=1000, rounds=3, clients_per_round=5, usd_per_gib=0.03),
     {"n_params": 10**12, "rounds": 10**12, "clients_per_round": 10**12,
      "usd_per_gib": units.MAX_USD_PER_GIB, "bits_per_param": units.MAX_BITS_PER_PARAM}),
    (costs.dl_download_bytes, dict(n_params=1000, rounds=3, nodes=10**15, degree=4),
     {"n_params": units.MAX_COUNT, "rounds": units.MAX_COUNT, "nodes": units.MAX_COUNT,
      "bytes_per_param": units.MAX_BYTES_PER_PARAM}),
    (costs.compare_download_costs, dict(n_params=1000, rounds=3, clients_per_round=10,
                                        usd_per_gib=0.03, dl_degree=4),
     {"n_params": units.MAX_COUNT, "rounds": units.MAX_COUNT,
      "clients_per_round": units.MAX_COUNT, "usd_per_gib": units.MAX_USD_PER_GIB,
      "dl_usd_per_gib": units.MAX_USD_PER_GIB}),
    (bandwidth.transfer_times, dict(n_params=1000, n_participants=5, download_bps=1e6,
                                    upload_bps=1e5),
     {"n_params": units.MAX_COUNT, "n_participants": units.MAX_COUNT,
      "download_bps": units.MAX_BPS, "upload_bps": units.MAX_BPS,
      "bits_per_param": units.MAX_BITS_PER_PARAM}),
    (bandwidth.max_participants, dict(n_params=1000, download_bps=1e6, upload_bps=1e5,
                                      time_limit_s=60),
     {"download_bps": units.MAX_BPS, "upload_bps": units.MAX_BPS,
      "time_limit_s": units.MAX_SECONDS}),
    (bandwidth.broadcast_tree, dict(n_clients=100, n_params=1000, fanout=4, upload_bps=1e6),
     {"n_clients": 10**9, "n_params": units.MAX_COUNT, "upload_bps": units.MAX_BPS,
      "fanout": 10**9}),
    (bandwidth.max_participants_with_cdn, dict(n_params=1000, download_bps=1e6,
                                               upload_bps=1e5, time_limit_s=60),
     {"download_bps": units.MAX_BPS, "upload_bps": units.MAX_BPS,
      "time_limit_s": units.MAX_SECONDS, "server_copies": 10**9}),
    (bandwidth.local_steps_to_fit, dict(n_participants=10, n_params=1000, step_s=0.05,
                                        download_bps=1e6, upload_bps=1e5),
     {"n_participants": units.MAX_COUNT, "step_s": units.MAX_SECONDS,
      "download_bps": units.MAX_BPS, "upload_bps": units.MAX_BPS}),
    (units.format_bytes, dict(n_bytes=1000), {"n_bytes": units.MAX_FORMATTED}),
    (units.format_bps, dict(bits_per_s=1000), {"bits_per_s": units.MAX_FORMATTED}),
    (week.Scenario, dict(), {"n_nodes": units.MAX_COUNT, "n_params": None,
                             "bits_per_param": units.MAX_BITS_PER_PARAM, "degree": None}),
    (compression.compressed_bytes, dict(n_entries=1000, method="quantize"),
     {"n_entries": units.MAX_COUNT, "level": 16}),
    (compression.compressed_bytes, dict(n_entries=1000, method="topk"),
     {"level": 1}),
    (messages.allreduce_messages, dict(n_nodes=8), {"n_nodes": units.MAX_COUNT}),
    (gossip.gossip_average, dict(values=[1.0, 2.0, 3.0], cycles=3),
     {"cycles": None, "delta": gossip.MAX_PERIOD_S}),
    (explore.fl_cost_result, dict(n_params=1000, rounds=3, clients_per_round=4,
                                  usd_per_gib=0.03, bytes_per_param=4),
     {"n_params": units.MAX_COUNT, "rounds": None, "clients_per_round": units.MAX_COUNT}),
    (explore.fl_bandwidth_equations, dict(n_params=1000, bits_per_param=32, download_bps=1e6,
                                          upload_bps=1e5, time_limit_s=60),
     {"n_params": units.MAX_COUNT, "download_bps": units.MAX_BPS,
      "upload_bps": units.MAX_BPS, "time_limit_s": units.MAX_SECONDS}),
]
CASES = [pytest.param(f, kw, p, bound, id=f"{f.__qualname__}-{p}")
         for f, kw, bounds in CALCULATORS for p, bound in bounds.items()]


def _call(func, kwargs, param, value):
    """A ValueError/TypeError naming ``param``, or the result with only finite numbers."""
    try:
        result = func(**{**kwargs, param: value})
    except (ValueError, TypeError) as error:
        assert param in str(error), \
            f"{func.__qualname__}({param}={value!r}): the error does not name it: {error}"
        return None
    if isinstance(result, tuple) and result and type(result[0]).__name__ == "Math":
        result = [m.data for m in result]
    if isinstance(result, explore.Result):
        result = result.rows
    assert_finite(result, f"{func.__qualname__}({param}={value!r})")
    return result


values = st.one_of(st.sampled_from(VALUE_CLASSES),
                   st.integers(min_value=-(10**20), max_value=10**20),
                   st.floats(allow_nan=True, allow_infinity=True))


@pytest.mark.parametrize("func, kwargs, param, bound", CASES)
@SETTINGS
@given(value=values)
def test_every_value_class_gives_a_named_error_or_finite_numbers(func, kwargs, param, bound,
                                                                  value):
    _call(func, kwargs, param, value)


@pytest.mark.parametrize("func, kwargs, param, bound", [c for c in CASES if c.values[3]])
def test_each_bound_exactly_and_bound_plus_one(func, kwargs, param, bound):
    assert _call(func, kwargs, param, bound) is not None, f"{param}={bound} refused"
    above = bound + 1 if isinstance(bound, int) else math.nextafter(bound, math.inf)
    if above == bound:  # the largest float: the next one up is inf
        above = math.inf
    with pytest.raises(ValueError, match=param):
        func(**{**kwargs, param: above})


def _same(a, b):
    if isinstance(a, explore.Result):
        return a.rows == b.rows
    if isinstance(a, gossip.AveragingResult):
        return np.array_equal(a.values, b.values) and np.array_equal(a.variance, b.variance)
    if isinstance(a, tuple) and a and type(a[0]).__name__ == "Math":
        return [m.data for m in a] == [m.data for m in b]
    return a == b


@pytest.mark.parametrize("func, kwargs, param, bound", CASES)
@pytest.mark.parametrize("wrap", [np.uint8, np.int16, np.int64, np.float32, Fraction],
                         ids=["uint8", "int16", "int64", "float32", "Fraction"])
def test_a_numpy_scalar_gives_the_plain_numbers_result(func, kwargs, param, bound, wrap):
    plain = kwargs.get(param, {"bits_per_param": 16, "server_copies": 3, "n_tensors": 1,
                               "level": 4 if kwargs.get("method") == "quantize" else 0.5,
                               "dl_usd_per_gib": 0.0, "bytes_per_param": 4}.get(param, 4))
    if param == "level" and kwargs.get("method") == "topk":
        plain = 0.5
    if wrap in (np.uint8, np.int16, np.int64) and plain != int(plain):
        pytest.skip("a whole-number wrapper of a fraction")
    if (wrap is np.uint8 and plain > 255 or wrap is np.int16 and plain > 32_767
            or wrap is np.float32 and float(np.float32(plain)) != plain):
        pytest.skip("not representable")
    wrapped = wrap(plain)
    try:
        expected = func(**{**kwargs, param: plain})
    except ValueError:
        with pytest.raises(ValueError):
            func(**{**kwargs, param: wrapped})
        return
    got = func(**{**kwargs, param: wrapped})
    assert _same(got, expected), f"{param}={wrapped!r} ({type(wrapped).__name__})"


def test_uint8_and_int16_are_used_after_checking():
    # The examples of the issue: the raw NumPy value used to wrap around.
    rows = dict(explore.fl_cost_result(np.uint8(200), 3, 2, 0.03, np.uint8(4)).rows)
    assert rows["bytes per client per round"] == "800 B"
    assert week.Scenario(n_params=np.int16(20_000)).model_bytes == 80_000
    assert type(week.Scenario(n_nodes=np.uint8(200)).n_nodes) is int


@pytest.mark.parametrize("value, expected", [
    (np.str_("ring"), "ring"), (np.int64(3), 3), (np.int16(3), 3), (np.bool_(True), True),
    (np.bool_(False), False), (np.float64(0.5), 0.5)])
def test_choices_take_numpy_values_and_return_the_plain_choice(value, expected):
    choice = units.check_choice("x", value, ["ring", 3, True, False, 0.5])
    assert choice == expected and type(choice) is type(expected)


@pytest.mark.parametrize("value", [True, np.bool_(True), 3.0, "3", np.array("ring"),
                                   np.array(3), 1j])
def test_choices_refuse_other_kinds(value):
    with pytest.raises(ValueError, match="x must be one of"):
        units.check_choice("x", value, ["ring", 3, 0.5])


def test_numpy_integers_where_python_ints_were_required():
    from dmlbook import configure_threads, selfcheck
    from dmlbook.distributed.net import listen as _listen

    assert series_style(np.int64(1)) == series_style(1)
    assert selfcheck.for_exercise(np.int64(1)).check_id == selfcheck.for_exercise(1).check_id
    sock = _listen("127.0.0.1", np.int64(0))
    sock.close()
    threads = torch.get_num_threads()
    assert configure_threads(np.int64(threads)) == threads
    check = selfcheck.choice("np-bool", "Which?", [("a", np.bool_(True), "yes"),
                                                   ("b", np.bool_(False), "no")])
    assert check.check_id == "np-bool"


@pytest.mark.parametrize("check", [units.check_int, units.check_number])
@pytest.mark.parametrize("value", VALUE_CLASSES)
def test_checkers_return_plain_python_numbers(check, value):
    try:
        out = check("x", value, maximum=10**6)
    except ValueError as error:
        assert str(error).startswith("x must be")
        return
    assert type(out) in (int, float) and math.isfinite(out)
    assert out == value or out == float(value)


def test_topology_refuses_a_multigraph():
    import networkx as nx

    multi = nx.MultiGraph([(0, 1), (0, 1), (1, 2), (2, 0)])
    for build in (lambda: topology.from_graph(multi), lambda: topology.mixing_matrix(multi),
                  lambda: topology.Topology(multi, np.eye(3))):
        with pytest.raises(ValueError, match="graph must be a simple networkx.Graph"):
            build()
    # nx.configuration_model returns a MultiGraph: collapsed, it is accepted.
    simple = nx.Graph(nx.configuration_model([2] * 6, seed=1))
    simple.remove_edges_from(list(nx.selfloop_edges(simple)))
    if nx.is_connected(simple):
        assert topology.from_graph(simple).doubly_stochastic


@pytest.mark.parametrize("n_bytes, text", [
    (0, "0 B"), (5e-324, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (2**20, "1.0 MiB"), (2**30 * 5, "5.0 GiB"), (2**40 * 3, "3.0 TiB"), (2**50, "1.0 PiB"),
    (2**60 * 2, "2.0 EiB"), (2.0**90, "1.07e+09 EiB"), (1e308, "8.67e+289 EiB"),
    (np.uint8(200), "200 B"), (Fraction(3, 2), "2 B")])
def test_format_bytes_at_each_unit(n_bytes, text):
    assert units.format_bytes(n_bytes) == text


@pytest.mark.parametrize("bps, text", [
    (0, "0 bit/s"), (999, "999 bit/s"), (1000, "1 kbit/s"), (1500, "1.5 kbit/s"),
    (10**6, "1 Mbit/s"), (2.5e6, "2.5 Mbit/s"), (10**9, "1 Gbit/s"), (1e12, "1000 Gbit/s"),
    (np.float32(2e6), "2 Mbit/s")])
def test_format_bps_at_each_unit(bps, text):
    assert units.format_bps(bps) == text
