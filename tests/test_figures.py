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


def test_compression_labels_do_not_collide():
    rows = [{"send": send, "method": method, "level": level, "accuracy": 0.8 + 0.001 * k,
             "upload_bytes": 2**20 * (1 + k % 2)}
            for k, (send, method, level) in enumerate(
                [("update", "quantize", 4), ("parameters", "quantize", 4),
                 ("update", "quantize", 8), ("parameters", "quantize", 8),
                 ("update", "topk", 0.1), ("parameters", "topk_keep", 0.1),
                 ("parameters", "quantize_per_tensor", 4), ("update", "topk", 0.5)])]
    fig = plotting.plot_compression(rows)
    fig.canvas.draw()
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    boxes = [t.get_window_extent() for t in texts]
    assert len(texts) == len(rows)
    overlaps = [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes))
                for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert overlaps == []
