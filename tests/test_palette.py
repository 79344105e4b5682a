"""The figures' palette is colour-blind safe (Okabe-Ito) and lines differ in style too."""

import matplotlib.colors as mcolors
import pytest

from dmlbook import plotting


def test_colors_keep_their_keys_and_come_from_okabe_ito():
    assert set(plotting.COLORS) == {"download", "upload", "fl", "dl", "accent", "band", "grey"}
    allowed = {c.lower() for c in plotting.OKABE_ITO.values()} | {"#7f7f7f"}
    assert {c.lower() for c in plotting.COLORS.values()} <= allowed
    # The pairs a figure sets against each other are different colours.
    assert plotting.COLORS["download"] != plotting.COLORS["upload"]
    assert plotting.COLORS["fl"] != plotting.COLORS["dl"]


def test_series_differ_in_colour_style_and_marker():
    styles = [plotting.series_style(i) for i in range(8)]
    for key in ("color", "linestyle", "marker"):
        assert len({str(s[key]) for s in styles}) == 8, key
    assert plotting.series_style(8) == plotting.series_style(0)  # the cycle wraps
    assert plotting.series_style(0, n_points=200)["markevery"] == 20
    assert all(mcolors.is_color_like(c) for c in plotting.LINE_COLORS)


def test_default_cycle_varies_the_line_style():
    fig, ax = plotting.figure()
    for i in range(4):
        ax.plot([0, 1], [i, i])
    assert len({str(line.get_linestyle()) for line in ax.lines}) == 4


@pytest.mark.parametrize("kw", [dict(index=-1), dict(index=1.0), dict(index=True),
                                dict(index=0, n_points=0), dict(index=0, n_points=2.5)])
def test_bad_input(kw):
    with pytest.raises(ValueError, match="index|n_points"):
        plotting.series_style(**kw)


def test_style_applies_to_the_books_figures_only():
    import matplotlib
    from matplotlib.figure import Figure

    before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    fig, ax = plotting.figure()
    ax.plot([0, 1], [0, 1])
    legend = ax.legend(["x"])
    assert not ax.spines["top"].get_visible() and not legend.get_frame_on()
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == before
    own = Figure().subplots()  # a student's figure, made after the book's
    own.plot([0, 1], [0, 1])
    assert own.spines["top"].get_visible() == matplotlib.rcParams["axes.spines.top"]
    assert own.get_legend() is None and own.legend(["x"]).get_frame_on() == (
        matplotlib.rcParams["legend.frameon"])


def test_every_figure_function_takes_ax_and_returns_its_figure():
    import inspect

    from matplotlib.figure import Figure

    import importlib

    names = [n for n in plotting.__all__ if n.startswith("plot_")]
    defined = {n for k in range(1, 7) for n in vars(importlib.import_module(
        f"dmlbook.plotting.ex{k}")) if n.startswith("plot_")}
    assert set(names) == defined and len(names) == len(defined)
    for name in names:
        assert "ax" in inspect.signature(getattr(plotting, name)).parameters, name
    # Drawing into given axes returns the figure of those axes.
    fig, ax = plotting.figure()
    out = plotting.plot_nmax_vs_upload(85_098, download_bps=1e9, time_limit_s=60, ax=ax)
    assert out is fig and isinstance(out, Figure)
    assert isinstance(plotting.plot_cumulative_cost(100, rounds=3, clients_per_round=2,
                                                    usd_per_gib=0.03), Figure)
