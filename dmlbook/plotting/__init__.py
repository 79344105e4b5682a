"""The book's figures, one module per chapter, and their shared style.

:mod:`~dmlbook.plotting.style` holds the palette, the one series-style helper
(:func:`series_style`), :func:`figure` and the style context
(:func:`book_style`); ``ex1`` ... ``ex6`` hold the figures of each chapter,
in the book's order. Every figure function takes ``ax=None`` (draws into new
axes when none are given) and returns its :class:`~matplotlib.figure.Figure`.

Importing this package changes no global state: the style is applied in a
context around the book's own figures only (a student's own figures keep
matplotlib's defaults), and no thread setting is made here.
"""

from .style import (COLORS, FIXED_MARGINS_IN, LINE_COLORS, LINE_STYLES, MARKERS, OKABE_ITO,
                    STYLE, book_figure, book_style, figure, plain_log_ticks, series_style)
from .ex1 import plot_nmax_panel, plot_nmax_vs_upload
from .ex2 import plot_cumulative_cost
from .ex3 import (plot_compute_profile, plot_failure_run, plot_failures,
                  plot_round_time_vs_model_size, plot_round_times, plot_traffic_vs_workers)
from .ex4 import plot_compression, plot_entry_histograms, plot_exchange
from .ex5 import plot_gossip_accuracy, plot_load_histograms, plot_progress, plot_variance
from .ex6 import plot_node_curves, plot_topologies

__all__ = [
    "COLORS", "FIXED_MARGINS_IN", "LINE_COLORS", "LINE_STYLES", "MARKERS", "OKABE_ITO",
    "STYLE", "book_figure", "book_style", "figure", "plain_log_ticks", "series_style",
    "plot_nmax_vs_upload", "plot_nmax_panel",
    "plot_cumulative_cost",
    "plot_traffic_vs_workers", "plot_compute_profile", "plot_round_times",
    "plot_round_time_vs_model_size", "plot_failures", "plot_failure_run",
    "plot_entry_histograms", "plot_compression", "plot_exchange",
    "plot_variance", "plot_gossip_accuracy", "plot_load_histograms", "plot_progress",
    "plot_node_curves", "plot_topologies",
]
