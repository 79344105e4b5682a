import matplotlib.figure
import pytest

from dmlbook import explore, widgets


def test_render_turns_value_errors_into_messages():
    def compute(x):
        if x <= 0:
            raise ValueError("x must be > 0")
        return x * 2

    assert widgets.render(compute, {"x": 2}) == ("ok", 4)
    assert widgets.render(compute, {"x": 0}) == ("error", "x must be > 0")
    html = widgets.error_html("speed must be > 0, got <b>")
    assert "speed must be &gt; 0" in html and "<b>" not in html.replace("<b>Input", "")


def test_other_errors_are_not_hidden():
    with pytest.raises(ZeroDivisionError):
        widgets.render(lambda: 1 / 0, {})


def test_bandwidth_view_default_is_the_sheet():
    table, fig = explore.fl_bandwidth_view(**explore.SHEET_EX1)
    assert "2,203" in table and "22,033" in table and "upload" in table
    assert isinstance(fig, matplotlib.figure.Figure)


def test_bandwidth_panel_shows_messages_for_bad_input():
    panel = explore.fl_bandwidth_panel()
    assert panel.values()["n_params"] == 85_098
    status, message = widgets.render(panel.compute, {**panel.values(), "upload_mbps": 0.0})
    assert status == "error" and "upload_bps" in message
    panel.controls["upload_mbps"].value = -5.0  # must not raise
    panel.controls["bits_per_param"].value = 16
    status, (table, _) = widgets.render(panel.compute, {**panel.values(), "upload_mbps": 100.0})
    assert "4,406" in table


def test_cost_view_and_panel():
    table, _ = explore.fl_cost_view(**explore.SHEET_EX2)
    assert "$110.65" in table and "$221.31" in table and "$0.00" in table
    panel = explore.fl_cost_panel()
    panel.controls["usd_per_gib"].value = 0.0  # a zero price is shown as a message
    status, message = widgets.render(panel.compute, panel.values())
    assert status == "error" and "usd_per_gib" in message


def test_equations_carry_the_computed_numbers():
    down, up = explore.fl_bandwidth_equations(85_098, 32, download_bps=1e9, upload_bps=1e8,
                                              time_limit_s=60)
    assert "22{,}033.4" in down.data and "2{,}203.3" in up.data
    eq = explore.fl_cost_equation(4_950_544, rounds=1000, clients_per_round=200,
                                  usd_per_gib=0.03, bytes_per_param=4)
    assert "19{,}802{,}176" in eq.data and "110.65" in eq.data


def test_allreduce_view_and_panel():
    table, _ = explore.allreduce_view(16, 85_098, 1.0)
    assert "parameter server" in table and "ring all-reduce" in table
    panel = explore.allreduce_panel()
    status, message = widgets.render(panel.compute, {**panel.values(), "link_gbps": 0.0})
    assert status == "error" and "link_bps" in message
    status, message = widgets.render(panel.compute, {**panel.values(), "n_workers": 0})
    assert status == "error" and "n_workers" in message


def test_dpsgd_view_counts_from_the_ledger_and_checks_nodes():
    table, _ = explore.dpsgd_view(16, 4, 5, "iid", 0, 3)
    assert table.count("<b>560</b>") == 2  # 5 * 16 * 4 + 16 * 15, formula and ledger
    status, message = widgets.render(explore.dpsgd_view, dict(
        n_nodes=16, degree=4, steps=5, split="iid", node_a=0, node_b=16))
    assert status == "error" and "node_b must be a node index in 0 .. 15" in message
    status, message = widgets.render(explore.dpsgd_view, dict(
        n_nodes=16, degree=20, steps=5, split="iid", node_a=0, node_b=1))
    assert status == "error" and "degree" in message


def test_compression_view_and_messages():
    table, _ = explore.compression_view("topk", 0.1, rounds=5)
    assert "clients send update" in table and "clients send parameters" in table
    status, message = widgets.render(explore.compression_view, {"method": "topk", "level": 5.0})
    assert status == "error" and "fraction must be in (0, 1]" in message
    status, message = widgets.render(explore.compression_view,
                                     {"method": "quantize", "level": 4.5})
    assert status == "error" and "bits" in message


def test_gossip_view_and_messages():
    table, _ = explore.gossip_view(16, 1.0, 0.1, 0.0, "balanced", until=5.0)
    assert "median test accuracy" in table and "busiest node" in table
    for bad, param in [({"delta": 0.0}, "delta"), ({"drop_prob": 1.5}, "drop_prob"),
                       ({"n_nodes": 1}, "n_nodes")]:
        values = {"n_nodes": 16, "delta": 1.0, "delay": 0.1, "drop_prob": 0.0,
                  "sampling": "uniform", **bad}
        status, message = widgets.render(explore.gossip_view, values)
        assert status == "error" and param in message


def test_panel_recomputes_on_every_change():
    calls = []

    def compute(a, b):
        calls.append((a, b))
        if a < 0:
            raise ValueError("a must be >= 0")
        return f"<b>{a + b}</b>"

    panel = widgets.Panel(compute, {"a": widgets.int_box("a", 1), "b": widgets.int_box("b", 2)})
    assert calls == [(1, 2)]
    panel.controls["a"].value = 5
    panel.controls["a"].value = -1  # shown as a message, never raised
    assert calls == [(1, 2), (5, 2), (-1, 2)]
    assert panel.values() == {"a": -1, "b": 2}
    assert "<td>x</td><td><b>1</b></td>" in widgets.table_html([("x", "1")])
