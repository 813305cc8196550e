"""Analyst reports of one experiment: Markdown or standalone HTML, with embedded plots.

`exp_pipeline.reporting` prints the terminal tables; this package writes the file an
analyst shares: the same numbers and verdict wording, plus posterior and cumulative plots.
"""

from exp_pipeline.report.plots import (
    Plot,
    cumulative_plot,
    cumulative_series,
    density_curves,
    metric_plots,
    png_data_uri,
    posterior_plot,
)
from exp_pipeline.report.render import escape_markdown, markdown_image, render_report

__all__ = [
    "Plot",
    "cumulative_plot",
    "cumulative_series",
    "density_curves",
    "escape_markdown",
    "markdown_image",
    "metric_plots",
    "png_data_uri",
    "posterior_plot",
    "render_report",
]
