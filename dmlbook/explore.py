"""The chapters' "Try it" panels: one :class:`~dmlbook.widgets.PanelSpec` per panel.

Each description gives the free live panel (:func:`panel`) and the static
explorer of the HTML site (:func:`explorer`); both call the same ``compute``.
The equations that exercises 1 and 2 show with their numbers filled in live in
:mod:`dmlbook.equations` (re-exported here).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from . import bandwidth, costs, plotting
from .dp_study import SCENARIO as EX3
from .scenarios import (EX4_SCENARIO, EX5_SCENARIO, EX6_SCENARIO, compression_rows,
                        dpsgd_run, gossip_run)
from .sheet import SHEET
from .units import MAX_COUNT, MBIT, check_int, format_bytes
from .equations import fl_bandwidth_equations, fl_cost_equation  # noqa: F401
from .static_explorer import static_explorer
from .widgets import Choice, InputError, LivePanel, Number, PanelSpec, Result

# The sheet's settings of exercises 1 and 2 (dmlbook.sheet), in the panels' units.
SHEET_EX1 = dict(n_params=SHEET.lenet_params, bits_per_param=SHEET.bits_per_param,
                 download_mbps=SHEET.download_bps / MBIT, upload_mbps=SHEET.upload_bps / MBIT,
                 time_limit_s=SHEET.time_limit_s)
SHEET_EX2 = dict(n_params=SHEET.lstm_params, rounds=SHEET.lstm_rounds,
                 clients_per_round=SHEET.lstm_clients_per_round, usd_per_gib=SHEET.usd_per_gib,
                 bytes_per_param=SHEET.lstm_bytes_per_param)
# Exercise 3's scenario (dmlbook.dp_study): the alpha-beta example and the failure runs.
SHEET_EX3_TIME = dict(n_workers=EX3.ab_workers, servers=1, n_params=EX3.ab_params,
                      link_gbps=EX3.link_bps / 1e9, latency_ms=EX3.alpha_s * 1e3)
INSTANT = "answered in milliseconds at any value; the bounds keep to plausible networks"


@contextmanager
def one_thread():
    """Train on one torch thread, then restore the setting.

    The panels' models are small: a second intra-op thread gains little alone,
    and on a busy 2-core machine (a build, other kernels) the threads' spinning
    made a 5-round FedAvg 14 times slower (7.8 s against 0.56 s, measured).
    """
    from . import pinned_threads

    with pinned_threads(1):
        yield


# ---------------------------------------------------------------- exercise 1


def fl_bandwidth_result(n_params, bits_per_param, download_mbps, upload_mbps,
                        time_limit_s) -> Result:
    """Both links' limits, n_max, the binding link (or a tie), transfer times at n_max."""
    limit = bandwidth.max_participants(
        n_params=n_params, bits_per_param=bits_per_param, download_bps=download_mbps * MBIT,
        upload_bps=upload_mbps * MBIT, time_limit_s=time_limit_s)
    if limit.download == limit.upload:
        binding = f"a tie: both links allow {limit.n_max:,} participants"
    else:
        binding = f"the server's {'upload' if limit.upload < limit.download else 'download'} link"
    rows = [("model size", f"{limit.model_bits:,} bits = {format_bytes(limit.model_bits / 8)}"),
            ("download link supports", f"{limit.download:,} participants"),
            ("upload link supports", f"{limit.upload:,} participants"),
            ("n_max", f"{limit.n_max:,}"),
            ("binding link", binding)]
    if limit.n_max >= 1:
        times = bandwidth.transfer_times(
            n_params=n_params, n_participants=limit.n_max, bits_per_param=bits_per_param,
            download_bps=download_mbps * MBIT, upload_bps=upload_mbps * MBIT)
        rows += [("at n_max: sending the model", f"{times.upload_s:.2f} s"),
                 ("at n_max: receiving the models", f"{times.download_s:.2f} s")]
    else:
        rows += [("note", "not even one participant fits into the time limit")]
    fig = plotting.plot_nmax_panel(n_params=n_params, bits_per_param=bits_per_param,
                                   download_bps=download_mbps * MBIT,
                                   upload_bps=upload_mbps * MBIT, time_limit_s=time_limit_s)
    alt = (f"Log-log chart: participants supported against the server's upload speed, 1 to "
           f"10,000 Mbit/s, for {n_params:,} parameters at {bits_per_param} bits and a "
           f"{time_limit_s:g} s limit. The download link's limit, {limit.download:,}, is a "
           f"dashed line; the chosen upload speed, {upload_mbps:g} Mbit/s, is marked at "
           f"{limit.n_max:,} participants.")
    return Result(rows, fig, alt)


EX1 = PanelSpec(
    key="ex1", title="How many FL participants fit into the time limit?",
    controls=(
        Number("n_params", "model size", "parameters", SHEET_EX1["n_params"], 1, 10**10,
               integer=True, why=INSTANT),
        Choice("bits_per_param", "precision", (("32 bits per parameter", 32),
                                               ("16 bits per parameter", 16),
                                               ("8 bits per parameter", 8)),
               SHEET_EX1["bits_per_param"]),
        Number("download_mbps", "server download speed", "Mbit/s",
               SHEET_EX1["download_mbps"], 0.01, 100_000,
               why=INSTANT),
        Number("upload_mbps", "server upload speed", "Mbit/s",
               SHEET_EX1["upload_mbps"], 0.01, 100_000,
               why=INSTANT),
        Number("time_limit_s", "time limit per round", "s",
               SHEET_EX1["time_limit_s"], 0.001, 86_400,
               why="down to 1 ms, so that a measured step time (about 15 ms) can be set"),
    ),
    compute=fl_bandwidth_result, height_px=640,
    grid={"upload_mbps": [10, 100, 1000], "bits_per_param": [32, 16, 8]})


# ---------------------------------------------------------------- exercise 2


def _dl_nodes(clients_per_round) -> int:
    """DL's nodes in exercise 2's comparison: the clients of a round, 2 or more."""
    return check_int("clients_per_round", clients_per_round, minimum=2, maximum=MAX_COUNT)


def fl_cost_result(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param) -> Result:
    """FL's cloud download bill, with uploads billed too, and DL's, as a table and a figure."""
    kw = dict(rounds=rounds, clients_per_round=clients_per_round, usd_per_gib=usd_per_gib)
    # DL on the same nodes: degree 8, or all the others when there are fewer.
    cmp = costs.compare_download_costs(n_params, bytes_per_param=bytes_per_param,
                                       dl_degree=min(8, _dl_nodes(clients_per_round) - 1), **kw)
    # The checked values from here on (a uint8 product would wrap around).
    per_client = costs.fl_download_bytes(n_params, rounds=1, clients_per_round=1,
                                         bytes_per_param=bytes_per_param)
    both = costs.fl_cumulative_cost(n_params, bytes_per_param=bytes_per_param,
                                    upload_usd_per_gib=usd_per_gib, **kw)[-1]
    rows = [("bytes per client per round", f"{per_client:,.0f} B"),
            ("one round costs", f"${cmp.fl_usd / rounds:,.4f}"),
            ("total downloaded from the cloud", format_bytes(cmp.fl_bytes)),
            ("FL download bill", f"${cmp.fl_usd:,.2f}"),
            ("FL bill if uploads were billed too", f"${both:,.2f}"),
            ("DL bill (flat-rate home links)", f"${cmp.dl_usd:,.2f}"),
            ("saving with DL", f"${cmp.saving_usd:,.2f}")]
    fig = plotting.plot_cumulative_cost(n_params, bytes_per_param=bytes_per_param,
                                        variants=False, layout="fixed", **kw)
    alt = (f"Line chart of the cumulative cloud bill in US dollars over {int(rounds):,} rounds: "
           f"FL's download bill rises linearly to ${cmp.fl_usd:,.2f}; DL over flat-rate "
           "links stays at $0.00.")
    return Result(rows, fig, alt)


EX2 = PanelSpec(
    key="ex2", title="What does FL's traffic cost in the cloud?",
    controls=(
        Number("n_params", "model size", "parameters",
               SHEET_EX2["n_params"], 1, 10**10, integer=True,
               why=INSTANT),
        Number("rounds", "rounds", "", SHEET_EX2["rounds"], 1, 100_000, integer=True,
               why="the figure draws every round"),
        Number("clients_per_round", "clients per round", "",
               SHEET_EX2["clients_per_round"], 2, 10**7, integer=True,
               why=INSTANT),
        Number("usd_per_gib", "price of cloud download", "$/GiB",
               SHEET_EX2["usd_per_gib"], 0.001, 10,
               why="cloud egress prices are a few cents per GiB"),
        Choice("bytes_per_param", "precision", (("4 bytes per parameter", 4),
                                                ("2 bytes per parameter", 2),
                                                ("1 byte per parameter", 1)),
               SHEET_EX2["bytes_per_param"]),
    ),
    compute=fl_cost_result, height_px=600,
    grid={"bytes_per_param": [4, 2, 1], "usd_per_gib": [0.01, 0.03, 0.09]})


# ---------------------------------------------------------------- exercise 3


def round_time_result(n_workers, n_params, link_gbps, latency_ms, servers) -> Result:
    """Exercise 3's time model (:mod:`dmlbook.comm_model`): each scheme's round."""
    from . import comm_model

    net = comm_model.Network(link_bps=link_gbps * 1e9, alpha_s=latency_ms / 1e3)
    model_bytes = n_params * 4
    rounds = [comm_model.round_time(s, n_workers, model_bytes, net) for s in comm_model.SCHEMES]
    if servers > 1:
        rounds.append(comm_model.ps_round(n_workers, model_bytes, net, servers=servers))
    rows = [(r.name, f"{r.seconds * 1e3:,.1f} ms per round ({r.alphas} α on its critical "
                     f"path, {format_bytes(r.bytes)} through the busiest link)") for r in rounds]
    best = min(r.seconds for r in rounds)
    fastest = [r.name for r in rounds if math.isclose(r.seconds, best, rel_tol=1e-9)]
    rows.append(("fastest", fastest[0] if len(fastest) == 1
                 else "a tie between " + " and ".join(fastest)))
    fig = plotting.plot_round_times(n_params, net.link_bps, max_workers=max(256, n_workers),
                                    mark=n_workers, latency_s=net.alpha_s, layout="fixed")
    ax = fig.axes[0]
    ax.set_title(f"{n_params:,} params, {link_gbps:g} Gbit/s, α = {latency_ms:g} ms", y=1.0)
    if servers > 1:
        ns = np.unique(np.geomspace(2, max(256, n_workers), 60).astype(int))
        ax.loglog(ns, [comm_model.ps_round(int(k), model_bytes, net, servers=servers).seconds
                       for k in ns], color="black", ls=":", label=rounds[-1].name)
        ax.legend(fontsize=8, loc="upper left")
    alt = (f"Log-log chart of the communication time per round against the number of workers "
           f"for {n_params:,} parameters over {link_gbps:g} Gbit/s links and {latency_ms:g} ms "
           f"per message, one line per scheme; at {n_workers} workers (marked) the fastest is "
           f"{rows[-1][1]}.")
    return Result(rows, fig, alt)


EX3_TIME = PanelSpec(
    key="ex3_time", title="How long does one round's communication take?",
    controls=(
        Number("n_workers", "workers", "", SHEET_EX3_TIME["n_workers"], 2, 4096, integer=True,
               why=INSTANT),
        Number("servers", "parameter servers (shards)", "", SHEET_EX3_TIME["servers"], 1, 4096,
               integer=True, why="1 is the single server; more shard the model as Li et al. do"),
        Number("n_params", "model size", "parameters", SHEET_EX3_TIME["n_params"], 1, 10**10,
               integer=True, why=INSTANT),
        Number("link_gbps", "link speed", "Gbit/s", SHEET_EX3_TIME["link_gbps"], 0.001, 1000,
               why=INSTANT),
        Number("latency_ms", "α, cost per message at the sender", "ms",
               SHEET_EX3_TIME["latency_ms"], 0, 1000, why=INSTANT),
    ),
    compute=round_time_result, height_px=600,
    grid={"n_workers": [4, 16, 64], "servers": [1, 4, 16]})

FAILURES = (("nothing fails", "none"), ("the last worker crashes", "worker"),
            ("the server crashes, no failover", "server"),
            ("the server crashes, a worker takes over", "failover"))


def failure_result(scheme, failure, n_workers, rounds, crash_round, *, seed=0) -> Result:
    """Exercise 3's failure runs, under the chapter's assumptions (``dp_study.SCENARIO``)."""
    from .allreduce import SCHEME_NAMES
    from .dp_study import SCENARIO, failure_run

    victim = None if failure == "none" else (n_workers - 1 if failure == "worker" else n_workers)
    with one_thread():
        run = failure_run(scheme, failure, n_workers, rounds, crash_round, seed)
    updated = sum(run.updated[1:])
    totals = run.ledger.totals()
    name = SCHEME_NAMES[scheme]
    rows = [("scheme", name),
            ("final test accuracy", f"{run.test_acc[-1]:.3f}"),
            ("rounds that updated the model", f"{updated} of {rounds}"),
            ("rounds without progress", f"{rounds - updated}"),
            ("messages sent / delivered", f"{totals.sent:,} / {totals.delivered:,}"),
            ("assumed (as in the chapter)", SCENARIO.describe_assumptions()
             + f"; seed {seed}")]
    label = {v: k for k, v in FAILURES}[failure]
    fig = plotting.plot_failure_run(run, crash_round=None if victim is None else crash_round,
                                    title=f"{name}, {n_workers} workers: {label}")
    alt = (f"Line chart of test accuracy over {rounds} rounds for the {name} with {n_workers} "
           f"workers when {label}"
           + ("" if victim is None else f" at round {crash_round}")
           + f"; it ends at {run.test_acc[-1]:.3f}, the model changed in {updated} rounds.")
    return Result(rows, fig, alt)


def _check_failure(values):
    if values["failure"] in ("server", "failover") and values["scheme"] != "ps":
        from .allreduce import SCHEME_NAMES

        raise InputError("failure: “the server crashes” needs a server; the "
                         f"{SCHEME_NAMES[values['scheme']]} has none, only the parameter "
                         "server scheme has one. Choose another failure or scheme.")
    if values["crash_round"] >= values["rounds"]:
        raise InputError(f"crash round: “{values['crash_round']}” is not before the last "
                         f"round. Enter a round from 1 to {values['rounds'] - 1}.")


EX3_FAILURES = PanelSpec(
    key="ex3_failures", title="What happens when a node crashes?", training=True,
    controls=(
        Choice("failure", "failure", tuple(FAILURES), "worker"),
        Choice("scheme", "scheme", (("parameter server (one server)", "ps"),
                                    ("naive all-reduce", "naive"),
                                    ("ring all-reduce", "ring")), "ring"),
        Number("n_workers", "workers", "", EX3.fail_workers, 2, 32, integer=True,
               why="32 workers train in a few seconds on a 2-core machine"),
        Number("rounds", "rounds", "", EX3.fail_rounds, 2, 100, integer=True,
               why="100 rounds train in a few seconds"),
        Number("crash_round", "crash round", "", EX3.crash_round, 1, 99, integer=True,
               why="before the last round"),
    ),
    compute=failure_result, check=_check_failure, height_px=600,
    grid={"failure": ["none", "worker", "server", "failover"], "scheme": ["ps", "naive", "ring"]})


# ---------------------------------------------------------------- exercise 4


def compression_result(method, level, rounds) -> Result:
    """Exercise 4: one compression setting, clients sending updates vs parameters."""
    from . import federated

    rows = compression_rows(method, level, rounds)
    table = [(f"clients send {row['send']}",
              f"accuracy {row['accuracy']:.3f}, {format_bytes(row['upload_bytes'])} up, "
              f"payload error {row['rel_error']:.1%}, step error {row['step_error']:.1%}")
             for row in rows]
    fig, ax = plotting.figure()
    for row, color in zip(rows, (plotting.COLORS["dl"], plotting.COLORS["upload"])):
        ax.plot(row["run"].rounds, row["run"].test_acc, color=color,
                label=f"clients send {row['send']}")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy of the server's model")
    setting = federated.describe(method, level)
    ax.set_title(setting)
    ax.legend(fontsize=8)
    update, params = rows
    alt = (f"Line chart of the server model's test accuracy over {rounds} FedAvg rounds with "
           f"{setting}: sending updates ends at {update['accuracy']:.3f}, sending parameters "
           f"at {params['accuracy']:.3f}.")
    return Result(table, fig, alt)


def compression_level(method):
    """The level control's meaning for a method: bits for quantization, a fraction for top-k."""
    if method == "quantize":
        return Number("level", "bits per entry", "bits", 4, 1, 16, integer=True,
                      why="what the quantizer accepts")
    if method == "topk":
        return Number("level", "fraction of entries kept (0 to 1)", "", 0.1, 0.001, 1,
                      why="at least one entry in a thousand")
    return None


EX4 = PanelSpec(
    key="ex4", title="Compress updates or parameters?", training=True,
    controls=(
        Choice("method", "compressor", (("no compression", "none"), ("quantization", "quantize"),
                                        ("top-k sparsification", "topk")), "quantize"),
        Number("level", "compression level", "", 4, 1, 16),
        Number("rounds", "FedAvg rounds", "", EX4_SCENARIO["rounds"], 1, 60, integer=True,
               why="60 rounds train in a few seconds"),
    ),
    compute=compression_result, depends={"level": ("method", compression_level)},
    height_px=560,
    # The chapter's scenario (30 rounds); 4 and 8 bits, top-10% and top-1% are the table's.
    grid={"method": ["quantize", "topk"], "level": {"quantize": [6, 4, 3, 2],
                                                    "topk": [0.5, 0.1, 0.05, 0.01]}},
    grid_labels={"level": ["mild: 6 bits or top-50%", "medium: 4 bits or top-10%",
                           "strong: 3 bits or top-5%", "strongest: 2 bits or top-1%"]})


# ---------------------------------------------------------------- exercise 5


def _check_gossip(values):
    delay, until = values["delay"], values["until"]
    if delay > until:
        raise InputError(f"message delay: “{delay:g}” s is longer than the simulated time of "
                         f"{until:g} s, so no message would arrive. Choose a delay of at most "
                         "the simulated time.")


def gossip_result(n_nodes, delta, delay, drop_prob, sampling, until, *, seed=0) -> Result:
    """Exercise 5: gossip learning's accuracy over time and its load per cycle."""
    from . import gossip

    result = gossip_run(n_nodes=n_nodes, delta=delta, delay=delay, drop_prob=drop_prob,
                        sampling=sampling, until=until, seed=seed)
    cycles = max(1, int(until / delta) - 1)
    load = gossip.received_per_cycle(result.ledger, n_nodes, cycles)
    totals = result.ledger.totals()
    median = float(np.median(result.test_acc[-1]))
    idle = float((load == 0).mean())
    rows = [("median test accuracy at the end", f"{median:.3f}"),
            ("messages sent / delivered", f"{totals.sent:,} / {totals.delivered:,}"),
            ("nodes receiving nothing in a cycle", f"{idle:.1%}"),
            ("busiest node in a cycle", f"{load.max()} messages")]
    fig, (ax1, ax2) = plotting.figure(ncols=2, figsize=(10, 3.6))
    plotting.plot_gossip_accuracy(result, ax=ax1, title=f"{n_nodes} nodes, Δ = {delta:g} s")
    plotting.plot_load_histograms({sampling: load},
                                  gossip.uniform_load_prediction(n_nodes, 5), ax=ax2)
    alt = (f"Left: test accuracy of {n_nodes} gossiping nodes over {until:g} s with Δ = "
           f"{delta:g} s, {sampling} peer sampling and loss probability {drop_prob:g}; the "
           f"median ends at {median:.3f}. Right: histogram of messages received per node and "
           f"cycle; {idle:.1%} of nodes receive none in a cycle.")
    return Result(rows, fig, alt)


EX5 = PanelSpec(
    key="ex5", title="Gossip learning: period, loss and peer sampling", training=True,
    controls=(
        Choice("sampling", "peer sampling", (("uniform", "uniform"),
                                             ("balanced", "balanced")), "uniform"),
        Number("drop_prob", "loss probability", "", 0.0, 0.0, 0.9,
               why="at 0.9 almost nothing arrives"),
        Number("n_nodes", "nodes", "", EX5_SCENARIO["n_nodes"], 4, 128, integer=True,
               why="128 nodes simulate in a few seconds"),
        Number("delta", "Δ, the period", "s", EX5_SCENARIO["delta"], 0.25, 10,
               why="shorter periods multiply the events to simulate"),
        Number("delay", "message delay", "s", EX5_SCENARIO["delay"], 0.0, 5,
               why="up to five periods"),
        Number("until", "simulated time", "s", EX5_SCENARIO["until"], 2, 60,
               why="60 s simulate in a few seconds at 32 nodes"),
    ),
    compute=gossip_result, check=_check_gossip, height_px=620,
    grid={"drop_prob": [0.0, 0.3, 0.6], "sampling": ["uniform", "balanced"]})


# ---------------------------------------------------------------- exercise 6


def dpsgd_result(n_nodes, degree, steps, split, node_a, node_b, *, seed=0) -> Result:
    """Exercise 6: message count (formula and ledger) and two nodes' loss curves."""
    from . import messages

    formula = messages.dpsgd_messages(n_nodes, degree, steps, final_allreduce="naive")
    result = dpsgd_run(n_nodes=n_nodes, degree=degree, rounds=steps, split=split, seed=seed)
    per_round = result.ledger.per_round()
    counted = int(per_round.sum())
    rows = [("messages, closed form", f"{formula:,}"),
            ("messages, counted by the ledger", f"{counted:,}"),
            ("of which D-PSGD steps", f"{int(per_round[1:steps + 1].sum()):,}"),
            ("of which the naive all-reduce", f"{int(per_round[steps + 1]):,}")]
    _, ax = plotting.figure()
    plotting.plot_node_curves(result.history, (node_a, node_b), ax=ax,
                              title=f"{n_nodes} nodes, degree {degree}, {split} data")
    alt = (f"Line chart of test loss over {steps} D-PSGD steps for nodes {node_a} and "
           f"{node_b} of {n_nodes} (degree {degree}, {split} data), over a band spanning all "
           f"nodes; {counted:,} messages were sent in all.")
    return Result(rows, ax.figure, alt)


def _check_dpsgd(values):
    n, degree = values["n_nodes"], values["degree"]
    if degree >= n or (n * degree) % 2:
        raise InputError(f"degree: “{degree}” does not fit {n} nodes. A regular graph needs a "
                         "degree below the number of nodes, and nodes × degree even.")
    for name, label in (("node_a", "first node shown"), ("node_b", "second node shown")):
        if values[name] >= n:
            raise InputError(f"{label}: “{values[name]}” is not a node; with {n} nodes they "
                             f"are numbered 0 to {n - 1}.")


EX6 = PanelSpec(
    key="ex6", title="D-PSGD: messages and two nodes' learning curves", training=True,
    controls=(
        Number("degree", "degree", "neighbours", EX6_SCENARIO["degree"], 2, 64, integer=True,
               why="each step's cost grows with the degree"),
        Choice("split", "data split", (("iid", "iid"), ("shards (non-iid)", "shards"),
                                       ("Dirichlet (non-iid)", "dirichlet")), "iid"),
        Number("n_nodes", "nodes", "", EX6_SCENARIO["n_nodes"], 4, 256, integer=True,
               why="256 nodes train in a few seconds"),
        Number("steps", "D-PSGD steps", "", EX6_SCENARIO["rounds"], 1, 100, integer=True,
               why="100 steps train in a few seconds"),
        Number("node_a", "first node shown", "", 0, 0, 255, integer=True, why="a node index"),
        Number("node_b", "second node shown", "", 1, 0, 255, integer=True, why="a node index"),
    ),
    compute=dpsgd_result, check=_check_dpsgd, height_px=560,
    # The sheet's scenario: 128 nodes, 50 steps; degree 8 is the sheet's, 2 a ring.
    grid={"degree": [8, 2], "split": ["iid", "shards"]})


SPECS = {spec.key: spec for spec in (EX1, EX2, EX3_TIME, EX3_FAILURES, EX4, EX5, EX6)}


def panel(key: str, **defaults) -> LivePanel:
    """The free panel of ``key`` ("ex1" ... "ex6", "ex3_time", "ex3_failures")."""
    if not isinstance(key, str) or key not in SPECS:
        raise ValueError(f"key must be one of {', '.join(map(repr, SPECS))}, got {key!r}")
    return LivePanel(SPECS[key], **defaults)


def explorer(key: str):
    """The precomputed explorer of ``key`` for the static site (no kernel needed)."""
    return static_explorer(SPECS[key])
