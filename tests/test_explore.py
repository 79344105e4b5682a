"""The chapters' "Try it" panels (dmlbook.explore): what each panel computes and says."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from dmlbook import explore


def _png(html):
    match = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert match, "no figure in the result"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(match[1]))).convert("L"))


def test_ex1_sheet_case_and_the_tie():
    spec = explore.SPECS["ex1"]
    status, html = spec.evaluate({**explore.SHEET_EX1, "download_mbps": "1000",
                                  "upload_mbps": "100", "n_params": "85098",
                                  "time_limit_s": "60"})
    assert status == "ok" and "2,203" in html and "22,033" in html
    assert "the server&#x27;s upload link" in html
    status, html = spec.evaluate({**explore.SHEET_EX1, "upload_mbps": "1000"})
    assert "a tie: both links allow 22,033 participants" in html
    assert "upload link" not in html.split("binding link")[1][:80]
    status, message = spec.evaluate({**explore.SHEET_EX1, "upload_mbps": "-5"})
    assert status == "error"
    assert message.startswith("server upload speed (Mbit/s): “-5” is below the bound")


def test_ex4_level_follows_the_method():
    panel = explore.panel("ex4")
    level = panel.controls["level"]
    assert level.description == "bits per entry (bits)" and level.value == "4"
    panel.controls["method"].value = "topk"
    assert level.description == "fraction of entries kept (0 to 1)" and level.value == "0.1"
    level.value = "8"
    panel.run()
    assert "fraction of entries kept (0 to 1): “8” is above the bound 1" in panel.output.value
    panel.controls["method"].value = "none"
    assert level.disabled and "not used" in level.description
    panel.controls["method"].value = "quantize"
    assert not level.disabled and level.value == "4"


def test_cross_control_checks_speak_of_the_controls():
    status, message = explore.SPECS["ex6"].evaluate(
        {"n_nodes": "16", "degree": "20", "steps": "5", "split": "iid", "node_a": "0",
         "node_b": "1"})
    assert status == "error" and message.startswith("degree: “20” does not fit 16 nodes")
    status, message = explore.SPECS["ex6"].evaluate(
        {"n_nodes": "16", "degree": "4", "steps": "5", "split": "iid", "node_a": "0",
         "node_b": "16"})
    assert message.startswith("second node shown: “16” is not a node")
    status, message = explore.SPECS["ex3_failures"].evaluate(
        {"failure": "server", "scheme": "ring", "n_workers": "4", "rounds": "5",
         "crash_round": "2"})
    assert status == "error" and "only the parameter server scheme has one" in message


def test_every_chapter_explorer_is_built_from_its_spec():
    # The cheap ones in full; the training ones are built by the book.
    for key in ("ex1", "ex2", "ex3_time"):
        box = explore.explorer(key)
        leaves = [leaf.value for inner in box.children[2].children for leaf in inner.children]
        assert len(leaves) == 9 and all("<img" in leaf and "alt=" in leaf for leaf in leaves)
        assert len(set(leaves)) == 9


@pytest.mark.parametrize("key, typed, expect", [
    ("ex3_failures", {"failure": "worker", "scheme": "ring", "n_workers": "4", "rounds": "6",
                      "crash_round": "2"}, "rounds that updated the model"),
    ("ex4", {"method": "topk", "level": "0.1", "rounds": "2"}, "clients send update"),
    ("ex5", {"n_nodes": "8", "delta": "1", "delay": "0.1", "drop_prob": "0",
             "sampling": "balanced", "until": "3"}, "busiest node in a cycle"),
    ("ex6", {"n_nodes": "8", "degree": "2", "steps": "3", "split": "iid", "node_a": "0",
             "node_b": "7"}, "messages, counted by the ledger"),
])
def test_training_panels_compute_small_cases(key, typed, expect):
    status, html = explore.SPECS[key].evaluate(typed)
    assert status == "ok", html
    assert expect in html and _png(html).std() > 10


def test_dpsgd_counts_match_the_closed_form():
    result = explore.dpsgd_result(16, 4, 5, "iid", 0, 3)
    values = dict(result.rows)
    assert values["messages, closed form"] == values["messages, counted by the ledger"] == "560"


def test_cost_and_time_model():
    rows = dict(explore.fl_cost_result(**explore.SHEET_EX2).rows)
    assert rows["FL download bill"] == "$110.65"
    assert rows["DL bill (flat-rate home links)"] == "$0.00"
    rows = dict(explore.round_time_result(2, 85_098, 1.0, 0.0, 1).rows)
    # With two workers a ring is one exchange: it ties with the naive all-reduce.
    assert rows["fastest"] == "a tie between naive all-reduce and ring all-reduce"
    assert dict(explore.round_time_result(16, 85_098, 1.0, 1.0, 1).rows)["fastest"] == "ring all-reduce"


def test_equations_carry_the_computed_numbers():
    down, up = explore.fl_bandwidth_equations(85_098, 32, download_bps=1e9, upload_bps=1e8,
                                              time_limit_s=60)
    assert "22{,}033.4" in down.data and "2{,}203.3" in up.data
    eq = explore.fl_cost_equation(4_950_544, rounds=1000, clients_per_round=200,
                                  usd_per_gib=0.03, bytes_per_param=4)
    assert "19{,}802{,}176" in eq.data and "110.65" in eq.data
