"""The chapters' "try it" widgets: controls -> a dmlbook computation -> a result.

Each ``*_panel`` function returns a :class:`~dmlbook.widgets.Panel`; each
``*_view`` function is what the panel computes, usable without a kernel (the
chapters call it once more to draw the static figure of the default state).
"""

from __future__ import annotations

import math

import numpy as np

from . import bandwidth, costs, plotting
from .units import MBIT, format_bytes
from .widgets import Panel, choice, float_box, int_box, table_html

SHEET_EX1 = dict(n_params=85_098, bits_per_param=32, download_mbps=1000.0,
                 upload_mbps=100.0, time_limit_s=60.0)
SHEET_EX2 = dict(n_params=4_950_544, rounds=1000, clients_per_round=200,
                 usd_per_gib=0.03, bytes_per_param=4)


def fl_bandwidth_view(n_params, bits_per_param, download_mbps, upload_mbps, time_limit_s):
    """Both limits, n_max, the binding link, and the transfer times at n_max."""
    limit = bandwidth.max_participants(
        n_params, bits_per_param=bits_per_param, download_bps=download_mbps * MBIT,
        upload_bps=upload_mbps * MBIT, time_limit_s=time_limit_s)
    rows = [("model size", f"{limit.model_bits:,} bits = {format_bytes(limit.model_bits / 8)}"),
            ("download link supports", f"{limit.download:,} participants"),
            ("upload link supports", f"{limit.upload:,} participants"),
            ("n_max", f"{limit.n_max:,}"),
            ("binding link", f"the server's {limit.bottleneck} link")]
    if limit.n_max >= 1:
        times = bandwidth.transfer_times(
            n_params, limit.n_max, bits_per_param=bits_per_param,
            download_bps=download_mbps * MBIT, upload_bps=upload_mbps * MBIT)
        rows += [("at n_max: sending the model", f"{times.upload_s:.2f} s"),
                 ("at n_max: receiving the models", f"{times.download_s:.2f} s")]
    else:
        rows += [("note", "not even one participant fits into the time limit")]
    fig = plotting.plot_nmax_vs_upload(
        n_params, bits_per_param=bits_per_param, download_bps=download_mbps * MBIT,
        time_limit_s=time_limit_s, mark_upload_bps=upload_mbps * MBIT)
    return table_html(rows), fig


def fl_bandwidth_panel(**defaults) -> Panel:
    """Widget over every assumption of exercise 1."""
    d = {**SHEET_EX1, **defaults}
    return Panel(fl_bandwidth_view, {
        "n_params": int_box("parameters", d["n_params"]),
        "bits_per_param": choice("bits per parameter", [32, 16, 8], d["bits_per_param"]),
        "download_mbps": float_box("server download (Mbit/s)", d["download_mbps"]),
        "upload_mbps": float_box("server upload (Mbit/s)", d["upload_mbps"]),
        "time_limit_s": float_box("time limit (s)", d["time_limit_s"]),
    })


def fl_cost_view(n_params, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    """FL's cloud download bill, its variants, and DL's, as a table and a figure."""
    kw = dict(rounds=rounds, clients_per_round=clients_per_round, usd_per_gib=usd_per_gib)
    cmp = costs.compare_download_costs(n_params, bytes_per_param=bytes_per_param, **kw)
    both = costs.fl_cumulative_cost(n_params, bytes_per_param=bytes_per_param,
                                    upload_usd_per_gib=usd_per_gib, **kw)[-1]
    rows = [("bytes per client per round", f"{n_params * bytes_per_param:,.0f} B"),
            ("total downloaded from the cloud", format_bytes(cmp.fl_bytes)),
            ("FL download bill", f"${cmp.fl_usd:,.2f}"),
            ("FL bill if uploads were billed too", f"${both:,.2f}"),
            ("DL bill (flat-rate home links)", f"${cmp.dl_usd:,.2f}"),
            ("saving with DL", f"${cmp.saving_usd:,.2f}")]
    fig = plotting.plot_cumulative_cost(n_params, bytes_per_param=bytes_per_param,
                                        variants=False, **kw)
    return table_html(rows), fig


def fl_cost_panel(**defaults) -> Panel:
    """Widget over every assumption of exercise 2."""
    d = {**SHEET_EX2, **defaults}
    return Panel(fl_cost_view, {
        "n_params": int_box("parameters", d["n_params"]),
        "rounds": int_box("rounds", d["rounds"]),
        "clients_per_round": int_box("clients per round", d["clients_per_round"]),
        "usd_per_gib": float_box("price ($/GiB)", d["usd_per_gib"]),
        "bytes_per_param": choice("bytes per parameter", [4, 2, 1], d["bytes_per_param"]),
    })


def _tex_int(n: int) -> str:
    return f"{n:,}".replace(",", "{,}")


def _tex_pow10(x: float) -> str:
    exponent = round(math.log10(x))
    return f"10^{{{exponent}}}" if 10.0**exponent == x else _tex_int(round(x))


def fl_bandwidth_equations(n_params, bits_per_param, *, download_bps, upload_bps,
                           time_limit_s):
    """The two inequalities of exercise 1's solution, as LaTeX (IPython ``Math``)."""
    from IPython.display import Math

    bits = bandwidth.model_bits(n_params, bits_per_param)
    out = []
    for bps in (download_bps, upload_bps):
        bound = time_limit_s * bps / bits
        out.append(Math(
            rf"n \cdot {_tex_int(bits)}\ \text{{bit}} \le {time_limit_s:g}\ \text{{s}}"
            rf" \cdot {_tex_pow10(bps)}\ \tfrac{{\text{{bit}}}}{{\text{{s}}}}"
            rf"\quad\Longrightarrow\quad n \le "
            + f"{bound:,.1f}".replace(",", "{,}")))
    return tuple(out)


def fl_cost_equation(n_params, *, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    """Exercise 2's cost formula with the numbers filled in, as LaTeX (``Math``)."""
    from IPython.display import Math

    usd = costs.fl_download_cost(n_params, rounds=rounds, clients_per_round=clients_per_round,
                                 usd_per_gib=usd_per_gib, bytes_per_param=bytes_per_param)
    per_client = _tex_int(round(n_params * bytes_per_param))
    return Math(
        rf"C_\text{{FL}} = {_tex_int(rounds)}\ \text{{rounds}} \cdot {_tex_int(clients_per_round)}"
        rf"\ \tfrac{{\text{{clients}}}}{{\text{{round}}}} \cdot {per_client}\ \tfrac{{\text{{B}}}}"
        rf"{{\text{{client}}}} \cdot \frac{{\${usd_per_gib:g}}}{{2^{{30}}\ \text{{B}}}}"
        rf" \approx \${usd:,.2f}")


def dpsgd_view(n_nodes, degree, steps, split, node_a, node_b, *, lr=0.5, seed=0):
    """Exercise 6: message count (formula and ledger) and two nodes' loss curves."""
    from . import dpsgd, messages

    formula = messages.dpsgd_messages(n_nodes, degree, steps, final_allreduce="naive")
    for name, node in (("node_a", node_a), ("node_b", node_b)):
        if isinstance(node, bool) or not isinstance(node, int) or not 0 <= node < n_nodes:
            raise ValueError(f"{name} must be a node index in 0 .. {n_nodes - 1}, got {node!r}")
    result = dpsgd.run_dpsgd(n_nodes=n_nodes, degree=degree, rounds=steps, lr=lr, split=split,
                             final_allreduce="naive", seed=seed, progress=False)
    per_round = result.ledger.per_round()
    rows = [("messages, closed form", f"{formula:,}"),
            ("messages, counted by the ledger", f"{int(per_round.sum()):,}"),
            ("of which D-PSGD steps", f"{int(per_round[1:steps + 1].sum()):,}"),
            ("of which the naive all-reduce", f"{int(per_round[steps + 1]):,}")]
    _, ax = plotting.figure()
    plotting.plot_node_curves(result.history, (node_a, node_b), ax=ax,
                              title=f"{n_nodes} nodes, degree {degree}, {split} data")
    return table_html(rows), ax.figure


def dpsgd_panel(**defaults) -> Panel:
    """Widget over exercise 6's experiment."""
    d = {"n_nodes": 128, "degree": 8, "steps": 50, "split": "iid", "node_a": 0, "node_b": 1,
         **defaults}
    return Panel(dpsgd_view, {
        "n_nodes": int_box("nodes", d["n_nodes"]),
        "degree": int_box("degree", d["degree"]),
        "steps": int_box("D-PSGD steps", d["steps"]),
        "split": choice("data split", ["iid", "shards", "dirichlet"], d["split"]),
        "node_a": int_box("first node", d["node_a"]),
        "node_b": int_box("second node", d["node_b"]),
    })


def allreduce_view(n_workers, n_params, link_gbps):
    """Exercise 3: communication time per round of each scheme, and a figure over n."""
    from .allreduce import SCHEME_NAMES, busiest_link_bytes, round_time_s

    link_bps = link_gbps * 1e9
    rows = []
    for scheme, name in SCHEME_NAMES.items():
        t = round_time_s(scheme, n_workers, n_params, link_bps)
        busiest = busiest_link_bytes(scheme, n_workers, n_params * 4)
        rows.append((name, f"{t * 1e3:,.1f} ms per round ({format_bytes(busiest)} "
                           "on the busiest link)"))
    fig = plotting.plot_round_times(n_params, link_bps, max_workers=max(256, n_workers),
                                    mark=n_workers)
    return table_html(rows), fig


def allreduce_panel(**defaults) -> Panel:
    """Widget: workers, model size and link speed -> time per round of each scheme."""
    d = {"n_workers": 16, "n_params": 85_098, "link_gbps": 1.0, **defaults}
    return Panel(allreduce_view, {
        "n_workers": int_box("workers", d["n_workers"]),
        "n_params": int_box("parameters", d["n_params"]),
        "link_gbps": float_box("link speed (Gbit/s)", d["link_gbps"]),
    })


def compression_view(method, level, rounds=30):
    """Exercise 4: one compression setting, updates vs parameters."""
    from . import federated

    if method == "none":
        level = None
    rows = federated.compression_table(((method, level),), rounds=rounds)
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
    ax.set_title(federated.describe(method, level))
    ax.legend(fontsize=8)
    return table_html(table), fig


def compression_panel(**defaults) -> Panel:
    """Widget: compression method and level -> error, bytes and accuracy."""
    d = {"method": "quantize", "level": 4.0, **defaults}
    return Panel(compression_view, {
        "method": choice("method", ["none", "quantize", "topk"], d["method"]),
        "level": float_box("level (bits, or fraction kept)", d["level"]),
    })


def gossip_view(n_nodes, delta, delay, drop_prob, sampling, *, until=20.0, seed=0):
    """Exercise 5: gossip learning's accuracy over time and its load histogram."""
    from . import gossip

    result = gossip.gossip_learning(n_nodes=n_nodes, delta=delta, delay=delay,
                                    drop_prob=drop_prob, sampling=sampling, until=until,
                                    lr=0.5, seed=seed, progress=False)
    cycles = max(1, int(until / delta) - 1)
    load = gossip.received_per_cycle(result.ledger, n_nodes, cycles)
    totals = result.ledger.totals()
    rows = [("median test accuracy at the end", f"{np.median(result.test_acc[-1]):.3f}"),
            ("messages sent / delivered", f"{totals.sent:,} / {totals.delivered:,}"),
            ("nodes receiving nothing in a cycle", f"{(load == 0).mean():.1%}"),
            ("busiest node in a cycle", f"{load.max()} messages")]
    fig, (ax1, ax2) = plotting.figure(ncols=2, figsize=(10, 3.6))
    plotting.plot_gossip_accuracy(result, ax=ax1, title=f"{n_nodes} nodes, Δ = {delta:g} s")
    plotting.plot_load_histograms({sampling: load},
                                  gossip.uniform_load_prediction(n_nodes, 5), ax=ax2)
    return table_html(rows), fig


def gossip_panel(**defaults) -> Panel:
    """Widget: nodes, Δ, delay, loss, peer sampling -> accuracy over time and load."""
    d = {"n_nodes": 64, "delta": 1.0, "delay": 0.1, "drop_prob": 0.0, "sampling": "uniform",
         **defaults}
    return Panel(gossip_view, {
        "n_nodes": int_box("nodes", d["n_nodes"]),
        "delta": float_box("Δ, period (s)", d["delta"]),
        "delay": float_box("message delay (s)", d["delay"]),
        "drop_prob": float_box("loss probability", d["drop_prob"]),
        "sampling": choice("peer sampling", ["uniform", "balanced"], d["sampling"]),
    })
