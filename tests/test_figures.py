"""Figures readable at the page's width: two panels stacked, one resolution everywhere."""

import pytest

from dmlbook import plotting, widgets


def test_two_panels_are_stacked_at_the_books_width():
    fig, (top, bottom) = plotting.figure(ncols=2, figsize=(10, 3.6))
    assert tuple(fig.get_size_inches()) == pytest.approx((plotting.style.STACKED_WIDTH_IN,
                                                          1.9 * 3.6))
    a, b = top.get_position(), bottom.get_position()
    assert a.y0 > b.y1 and a.x0 == pytest.approx(b.x0, abs=0.05)  # one above the other
    fig, (left, right) = plotting.figure(ncols=2, figsize=(10, 3.6), stack=False)
    assert tuple(fig.get_size_inches()) == (10, 3.6)
    assert left.get_position().x1 < right.get_position().x0


def test_explorers_render_at_twice_their_displayed_size():
    assert widgets.RENDER_DPI == 2 * widgets.CSS_DPI
