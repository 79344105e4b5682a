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
