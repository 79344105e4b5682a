"""The "Try it" panel framework: bounds, messages, ties, Run, figures, one update."""

import base64
import io
import re

import ipywidgets as W
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from dmlbook import explore, static_explorer, widgets
from dmlbook.widgets import Choice, InputError, LivePanel, Number, PanelSpec, Result


def _figure(x):
    fig = matplotlib.figure.Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, x])
    return fig


def _spec(training=False, compute=None, **kw):
    def default_compute(a, b):
        return Result([("a plus b", f"{a + b:g}")], _figure(a + b), f"a line to {a + b}")

    return PanelSpec(key="t", title="test", training=training,
                     controls=(Number("a", "speed", "Mbit/s", 1, 0.5, 100, why="test"),
                               Choice("b", "mode", (("one", 1), ("two", 2)), 1)),
                     compute=compute or default_compute,
                     **{"grid": {"a": [1, 2], "b": [1, 2]}, **kw})


def _png(html):
    match = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert match, "no figure in the result"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(match[1]))).convert("L"))


@pytest.mark.parametrize("typed, says", [
    ("0", "“0” is below the bound 0.5 Mbit/s"),
    ("-5", "“-5” is below the bound 0.5 Mbit/s"),
    ("abc", "“abc” is not a number"),
    ("1e9", "“1e9” is above the bound 100 Mbit/s"),
    ("nan", "“nan” is not accepted"),
    ("", "“” is not a number"),
])
def test_numbers_answer_in_the_students_terms(typed, says):
    speed = Number("upload", "server upload speed", "Mbit/s", 1, 0.5, 100)
    with pytest.raises(InputError) as err:
        speed.parse(typed)
    message = str(err.value)
    assert message.startswith("server upload speed (Mbit/s): ") and says in message
    assert "a number from 0.5 to 100 Mbit/s" in message
    assert "upload_bps" not in message and "upload" not in message.split(":")[0].split()[0]


def test_numbers_accept_what_a_student_types():
    count = Number("n", "workers", "", 4, 2, 4096, integer=True)
    assert count.parse("16") == 16 and count.parse("1,024") == 1024 and count.parse(" 2 ") == 2
    assert isinstance(count.parse("8.0"), int)
    with pytest.raises(InputError, match="“2.5” is not a whole number"):
        count.parse("2.5")
    with pytest.raises(InputError):
        count.parse(True)
    assert Number("x", "x", "s", 1, 0, 10).parse("−3".replace("−", "")) == 3


def test_every_panel_documents_its_bounds_and_labels():
    for spec in explore.SPECS.values():
        names = [c.name for c in spec.controls]
        assert len(names) == len(set(names))
        for c in spec.controls:
            assert c.label and "_" not in c.text, c
            if isinstance(c, Number) and c.name not in spec.depends:
                assert c.why and c.low <= c.default <= c.high, c
                assert c.bounds_text() in spec.bounds_html()
        assert len(spec.grid) == 2 and all(name in names for name in spec.grid)


def test_figures_are_not_pyplot_and_are_drawn():
    plt.close("all")
    result = explore.fl_bandwidth_result(85_098, 32, 1000, 100, 60)
    assert isinstance(result.figure, matplotlib.figure.Figure)
    assert plt.get_fignums() == []  # pyplot never saw it: flush_figures cannot close it
    pixels = _png(widgets.result_html(result))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # lines, not a blank image
    assert "alt=\"Log-log chart" in widgets.result_html(result)


def test_calculator_updates_once_per_change_with_table_and_figure_together():
    panel = LivePanel(_spec())
    assert panel.computations == 1 and "<b>2</b>" in panel.output.value
    seen = []
    panel.output.observe(lambda change: seen.append(change["new"]), names="value")
    panel.controls["a"].value = "3"
    assert len(seen) == 1 and "<b>4</b>" in seen[0] and "<img" in seen[0]
    panel.controls["b"].value = 2
    assert len(seen) == 2 and "<b>5</b>" in seen[1]
    panel.controls["a"].value = "abc"  # a message, the stale result cleared
    assert len(seen) == 3 and "speed (Mbit/s): “abc” is not a number" in seen[2]
    assert "<img" not in seen[2] and "Traceback" not in seen[2]
    assert panel.output.layout.height.endswith("px")  # a fixed-size output area


def test_any_exception_is_caught_and_named_in_the_students_terms():
    def broken(a, b):
        return 1 / 0

    panel = LivePanel(_spec(compute=broken))
    assert "Not computed" in panel.output.value
    assert "speed (Mbit/s) = 1" in panel.output.value and "division by zero" in panel.output.value


def test_training_panel_runs_only_on_run_and_marks_stale_results():
    calls, disabled_during = [], []
    panel = None

    def compute(a, b):
        calls.append((a, b))
        disabled_during.append(panel.run_button.disabled)
        return Result([("sum", f"{a + b:g}")], _figure(a), "line")

    panel = LivePanel(_spec(training=True, compute=compute))
    assert calls == [] and "Press <b>Run</b>" in panel.status.value
    panel.controls["a"].value = "2"
    panel.controls["a"].value = "3"  # arrow-key steps: no training
    assert calls == []
    states = []
    panel.run_button.observe(lambda c: states.append(c["new"]), names="disabled")
    panel.run()
    assert calls == [(3, 1)] and disabled_during == [True] and states == [True, False]
    assert "<b>4</b>" in panel.output.value and "Out of date" not in panel.status.value
    panel.controls["b"].value = 2
    assert "Out of date" in panel.status.value and "dmlbook-stale" in panel.output._dom_classes
    # The panel carries the rule that dims it (JupyterLab loads no book CSS).
    assert ".dmlbook-stale" in panel.children[0].value and "opacity" in panel.children[0].value
    assert calls == [(3, 1)]
    panel.controls["a"].value = "0"
    panel.run()
    assert "speed (Mbit/s): “0” is below the bound" in panel.output.value
    assert len(calls) == 1 and not panel.run_button.disabled


def test_static_explorer_switches_precomputed_results_of_the_same_code_path():
    spec = _spec()
    box = static_explorer.static_explorer(spec)
    note, controls, outer = box.children
    assert "Precomputed" in note.value and "make lab" in note.value and "rocket" in note.value
    first, second = controls.children
    assert isinstance(outer, W.Stack) and len(outer.children) == 2
    assert all(len(inner.children) == 2 for inner in outer.children)
    for i, a in enumerate([1, 2]):
        for j, b in enumerate([1, 2]):
            leaf = outer.children[i].children[j].value
            expected = spec.evaluate({"a": str(a), "b": b})[1]
            # The same table and alt text as the live panel's code path (the figure
            # differs only in its axes limits, shared across the grid).
            assert leaf.split("<img")[0] == expected.split("<img")[0]
            assert re.search(r'alt="[^"]*"', leaf)[0] == re.search(r'alt="[^"]*"', expected)[0]
            assert f"<b>{a + b}</b>" in leaf
    links = {(link.source, link.target) for link in box.links}
    # Browser-side links: the first dropdown to the outer Stack, the second to every inner one.
    assert links == {((first, "index"), (outer, "selected_index"))} | {
        ((second, "index"), (inner, "selected_index")) for inner in outer.children}
    assert all(type(link).__name__ == "DirectionalLink" for link in box.links)
    # "Precomputed" is said once, in the note; the labels name the controls only.
    assert first.description == "speed (Mbit/s)" and second.description == "mode"


def test_static_explorer_opens_at_the_sheets_values():
    spec = _spec(grid={"a": [0.5, 1, 2], "b": [2, 1]})  # the defaults: a = 1, b = 1
    box = static_explorer.static_explorer(spec)
    (first, second), outer = box.children[1].children, box.children[2]
    assert (first.value, second.value) == (1, 1)
    assert outer.selected_index == 1 and all(s.selected_index == 1 for s in outer.children)
    shown = outer.children[1].children[1].value
    assert "<b>2</b>" in shown  # a = 1, b = 1
    assert explore.explorer("ex1").children[1].children[0].label == "100"  # Mbit/s, the sheet's


def test_static_explorer_shares_its_axes_limits_across_results():
    figures = [_figure(1), _figure(5)]
    before = [f.axes[0].get_ylim() for f in figures]
    static_explorer.share_axes_limits(figures)
    after = {f.axes[0].get_ylim() for f in figures}
    assert len(after) == 1
    (low, high), = after
    assert low <= min(b[0] for b in before) and high >= max(b[1] for b in before)
    spec = _spec()
    box = static_explorer.static_explorer(spec)
    shown = [_png(leaf.value) for inner in box.children[2].children for leaf in inner.children]
    assert len({p.shape for p in shown}) == 1


@pytest.mark.parametrize("key, name, typed, says", [
    ("ex5", "drop_prob", "0.95", "loss probability: “0.95” is above the bound 0.9. "
                                 "Enter a number from 0 to 0.9."),
    ("ex5", "drop_prob", "-1", "loss probability: “-1” is below the bound 0. "
                               "Enter a number from 0 to 0.9."),
])
def test_bound_messages_name_each_bound_once(key, name, typed, says):
    with pytest.raises(widgets.InputError) as err:
        explore.SPECS[key].control(name).parse(typed)
    assert str(err.value) == says


def test_live_panels_draw_at_live_dpi_and_explorers_sharper():
    # A live panel redraws on every change at one device pixel per CSS pixel; the
    # static explorer's figures are drawn once, at 1.5 device pixels per CSS pixel.
    panel = LivePanel(_spec())
    assert _png(panel.output.value).shape == (2 * widgets.LIVE_DPI, 3 * widgets.LIVE_DPI)
    status, shown = _spec().evaluate({"a": "1", "b": 1})
    assert status == "ok"
    assert _png(shown).shape == (2 * widgets.RENDER_DPI, 3 * widgets.RENDER_DPI)
    assert 'width="300" height="200"' in shown  # the same size on the page either way


def test_figure_png_leaves_the_figure_as_it_was():
    fig = _figure(1)
    canvas = fig.canvas
    png = widgets.figure_png(fig, dpi=150)
    assert fig.dpi == 100 and fig.canvas is canvas
    assert Image.open(io.BytesIO(png)).size == (450, 300)
    # A figure with its own dpi and an Agg canvas of its own keeps both.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = matplotlib.figure.Figure(figsize=(3, 2), dpi=72)
    fig.subplots().plot([0, 1])
    canvas = FigureCanvasAgg(fig)
    size = canvas.get_width_height()
    png = widgets.figure_png(fig, dpi=100)
    assert Image.open(io.BytesIO(png)).size == (300, 200)
    assert fig.dpi == 72 and fig.canvas is canvas and canvas.get_width_height() == size


def test_fixed_layout_keeps_every_label_inside_the_figure():
    # The live calculators use fixed margins; extreme inputs must not push tick
    # labels, axis labels or the title off the figure.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    extremes = [explore.fl_bandwidth_result(10**10, 32, 0.01, 100_000, 86_400),
                explore.fl_bandwidth_result(1, 8, 100_000, 0.01, 0.1),
                explore.fl_cost_result(10**10, 100_000, 10**7, 10, 4),
                explore.round_time_result(4096, 10**10, 0.001, 1000, 4096),
                explore.round_time_result(2, 1, 1000, 0, 1)]
    for result in extremes:
        fig = result.figure
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # places the labels
        renderer = canvas.get_renderer()
        ax = fig.axes[0]
        box = fig.bbox
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, ax.xaxis.get_offset_text(),
                 ax.yaxis.get_offset_text()]
        for ticks, labels, (low, high) in ((ax.get_xticks(), ax.get_xticklabels(), ax.get_xlim()),
                                           (ax.get_yticks(), ax.get_yticklabels(), ax.get_ylim())):
            # Ticks beyond the axis' limits are not drawn.
            shown = [lab for t, lab in zip(ticks, labels)
                     if min(low, high) <= t <= max(low, high) and lab.get_text()]
            assert len(shown) >= 2, f"an axis of {result.alt[:60]!r} has < 2 tick labels"
            texts += shown
        legend = ax.get_legend()
        assert legend is not None
        texts += legend.get_texts()
        extent = legend.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1, "the legend leaves the figure"
        for text in texts:
            if not text.get_text() or not text.get_visible():
                continue
            extent = text.get_window_extent(renderer)
            assert (extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1
                    and extent.y0 >= box.y0 - 1 and extent.y1 <= box.y1 + 1), \
                f"{text.get_text()!r} leaves the figure"


def test_plain_log_labels():
    from dmlbook.plotting.style import _plain_number

    cases = {0.5: "0.5", 1: "1", 2: "2", 2000: "2,000", 99_999: "99,999", 1e5: "1e5",
             2e5: "2e5", 3e15: "3e15", 0.002: "0.002", 4.9999999999999996e-06: "5e-6",
             9.9996e5: "1e6"}
    assert {v: _plain_number(v) for v in cases} == cases


def test_layout_argument_is_checked():
    from dmlbook import plotting

    with pytest.raises(ValueError, match="layout"):
        plotting.figure(layout="tight")
