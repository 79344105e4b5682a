"""More tests for survivors of issue #27: behaviours whose existing guards let a
hand-made mutant through (see tests/test_hostile_survivors.py for the others).

Each test was checked by breaking its behaviour by hand and seeing it fail.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re

import pytest
from matplotlib.figure import Figure

from dmlbook import explore, static_explorer
from dmlbook.sheet import SHEET
from dmlbook.widgets import Choice, Result, error_html

# --- the static explorers: each option names the result behind it ---------------------


def _echo(**values):
    """A stand-in ``compute`` whose table names every value it was given."""
    return Result([(name, repr(value)) for name, value in sorted(values.items())],
                  Figure(figsize=(0.3, 0.2)), "echo")


def _table(leaf_html: str) -> str:
    return leaf_html.split("<img")[0]


@pytest.mark.parametrize("key", sorted(explore.SPECS))
def test_each_explorer_option_shows_the_result_of_the_value_it_names(key):
    # The real grids, controls and labels; a stand-in compute keeps it fast. The
    # value behind an option is found from its TEXT (not its position), so options
    # sorted or shuffled away from their results fail.
    spec = dataclasses.replace(explore.SPECS[key], compute=_echo)
    (first, first_values), (second, second_values) = spec.grid.items()
    dependent = isinstance(second_values, dict)
    box = static_explorer.static_explorer(spec)
    (first_dd, second_dd), outer = box.children[1].children, box.children[2]
    by_text = {spec.control(first).format(v): v for v in first_values}
    assert [text for text, _ in first_dd.options] and {
        text for text, _ in first_dd.options} == set(by_text)
    for first_text, i in first_dd.options:
        a = by_text[first_text]
        row = second_values[a] if dependent else second_values
        texts = (spec.grid_labels[second] if dependent
                 else [spec.control(second).format(v) for v in row])
        by_second_text = dict(zip(texts, row))
        assert {text for text, _ in second_dd.options} == set(by_second_text)
        shown = [_table(leaf.value) for leaf in outer.children[i].children]
        assert len(set(shown)) == len(row)  # each result tells its values apart
        for second_text, j in second_dd.options:
            b = by_second_text[second_text]
            typed = {**spec.defaults(), first: a, second: b}
            typed = {k: (v if isinstance(spec.control(k), Choice) else str(v))
                     for k, v in typed.items()}
            status, expected = spec.evaluate(typed)
            expected = _table(expected if status == "ok" else error_html(expected))
            assert shown[j] == expected, (key, first_text, second_text)


def test_ex1_explorer_bits_option_shows_that_bit_widths_n_max():
    # The sheet's closed form, n_max = floor(min(link) * T / (n_params * bits)), for the
    # option the first dropdown opens at (the sheet's upload link) and each bit width
    # the second dropdown NAMES.
    box = explore.explorer("ex1")
    (first_dd, second_dd), outer = box.children[1].children, box.children[2]
    upload_mbps = int(first_dd.label)
    assert upload_mbps * 1e6 == SHEET.upload_bps
    link = min(SHEET.upload_bps, SHEET.download_bps)
    for text, j in second_dd.options:
        bits = int(re.match(r"(\d+) bits per parameter$", text).group(1))
        leaf = outer.children[first_dd.value].children[j].value
        found = re.search(r"<td>n_max</td><td><b>(.*?)</b></td>", leaf)
        n_max = math.floor(link * SHEET.time_limit_s / (SHEET.lenet_params * bits))
        assert html.unescape(found.group(1)) == f"{n_max:,}", text
