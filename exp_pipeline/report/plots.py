"""Small PNG plots of one metric's results: posterior densities and cumulative daily series.

Plots read a results document only (schema in the README), like the terminal tables, so a
report drawn from stored results shows exactly what was materialised. They are drawn with
matplotlib's object API on an Agg canvas, never pyplot: no global figure registry and no
backend switch, so plotting works the same in Dagster runs, the CLI and headless CI. Matplotlib's
default style (not the user's matplotlibrc), a fixed size and no PNG metadata make the same
document give byte-identical images, so reports diff cleanly and can be cached.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from matplotlib import style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from numpy.typing import NDArray

from exp_pipeline.stats import BetaPosterior, GammaPosterior, NormalPosterior

FIGSIZE = (6.0, 3.2)
DPI = 90
# The x range covers this central mass of every variant's posterior: wide enough to show
# each tail, narrow enough that a long Gamma tail does not squash the peaks.
CENTRAL_MASS = 0.999
GRID_POINTS = 400

X_LABELS = {
    "funnel": "conversion rate",
    "trend": "events per control-sized audience",
    "continuous": "mean per exposed subject",
    "ratio": "ratio",
}


class Plot(NamedTuple):
    """One rendered plot: what it shows (the image's alt text) and its PNG bytes."""

    alt: str
    png: bytes


def posterior_of(spec: Mapping[str, Any]) -> BetaPosterior | GammaPosterior | NormalPosterior:
    """The core library's posterior for a document's `posterior` entry.

    Reusing the posteriors the statistics were computed with (scipy's incomplete beta and
    gamma functions) keeps the plotted curves and the reported intervals on one definition.
    """
    if spec["distribution"] == "beta":
        return BetaPosterior(alpha=spec["alpha"], beta=spec["beta"])
    if spec["distribution"] == "gamma":
        return GammaPosterior(shape=spec["shape"], rate=spec["rate"])
    if spec["distribution"] == "normal":
        return NormalPosterior(mean=spec["mean"], sd=spec["sd"])
    raise ValueError(f"unknown posterior distribution {spec['distribution']!r}")


def density_curves(
    metric: Mapping[str, Any], points: int = GRID_POINTS
) -> tuple[NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """A shared x grid over the central 99.9% of all variants' posteriors, and each pdf on it.

    One grid for every variant puts the curves on a common scale, which is the point of
    drawing them together.
    """
    posteriors = {v["variant_key"]: posterior_of(v["posterior"]) for v in metric["variants"]}
    tail = (1 - CENTRAL_MASS) / 2
    low = min(float(p.ppf(tail)) for p in posteriors.values())
    high = max(float(p.isf(tail)) for p in posteriors.values())
    x = np.linspace(low, high, points)
    return x, {key: p.pdf(x) for key, p in posteriors.items()}


def cumulative_series(
    metric: Mapping[str, Any],
) -> dict[str, tuple[NDArray[np.datetime64], NDArray[np.float64]]]:
    """Each variant's days and running total of its daily `data` (conversions or events)."""
    return {
        v["variant_key"]: (
            np.array(v["days"], dtype="datetime64[D]"),
            np.cumsum(np.asarray(v["data"], dtype=float)),
        )
        for v in metric["variants"]
    }


def _plain(text: str) -> str:
    """`text` shown literally: a `$` pair in an event or variant name would be mathtext."""
    return text.replace("$", r"\$")


def _png(draw: Callable[[Axes], None]) -> bytes:
    """Draw on a fresh Agg figure with `draw(axes)` and return the PNG bytes."""
    with style.context("default"):
        figure = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        draw(figure.add_subplot())
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def posterior_plot(metric: Mapping[str, Any]) -> bytes:
    """PNG of the posterior density of every variant of `metric`, one line each."""
    x, curves = density_curves(metric)

    def draw(ax: Axes) -> None:
        for key, density in curves.items():
            ax.plot(x, density, linewidth=1.5, label=_plain(key))
        ax.set_title(_plain(f"{metric['metric_key']}: posterior"), fontsize=10)
        ax.set_xlabel(X_LABELS.get(metric["kind"], "value"))
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)

    return _png(draw)


def cumulative_plot(metric: Mapping[str, Any]) -> bytes:
    """PNG of the running total of a metric's daily series, one line per variant."""
    series = cumulative_series(metric)
    if metric["kind"] == "funnel":
        measure = "conversions"
    else:
        measure = "count" if metric.get("math", "total") == "total" else metric["math"]

    def draw(ax: Axes) -> None:
        for key, (days, totals) in series.items():
            ax.plot(days, totals, marker="o", markersize=3, linewidth=1.5, label=_plain(key))
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_title(_plain(f"{metric['metric_key']}: cumulative"), fontsize=10)
        ax.set_xlabel("day")
        ax.set_ylabel(_plain(f"cumulative {measure}"))
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)

    return _png(draw)


def metric_plots(metric: Mapping[str, Any]) -> list[Plot]:
    """The plots of one metric: its posteriors, and its cumulative daily series.

    Funnels plot completed conversions per day, trends their metric events; a document
    from before daily funnel series existed gets the posterior plot alone.
    """
    key = metric["metric_key"]
    plots = [Plot(f"{key}: posterior density per variant", posterior_plot(metric))]
    if all("data" in v for v in metric["variants"]):
        what = "conversions" if metric["kind"] == "funnel" else metric["event"]
        plots.append(Plot(f"{key}: cumulative daily {what} per variant", cumulative_plot(metric)))
    return plots


def png_data_uri(png: bytes) -> str:
    """`png` as a `data:` URI, so a report carries its images inside one file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
