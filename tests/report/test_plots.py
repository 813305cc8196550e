"""Plots of a metric: small deterministic PNGs whose curves are the documented posteriors."""

from __future__ import annotations

import struct
from typing import Any

import matplotlib
import numpy as np
import pytest
from scipy import stats

from exp_pipeline.report.plots import (
    CENTRAL_MASS,
    DPI,
    FIGSIZE,
    cumulative_plot,
    cumulative_series,
    density_curves,
    metric_plots,
    posterior_of,
    posterior_plot,
)
from tests.report.conftest import trend_metric

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG, checking its signature."""
    assert png.startswith(PNG_SIGNATURE)
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        chunks.append((kind, png[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def all_plots(funnel: dict[str, Any], trend: dict[str, Any]) -> list[bytes]:
    return [posterior_plot(funnel), posterior_plot(trend), cumulative_plot(trend)]


def test_plots_are_small_pngs_of_the_fixed_size(funnel: dict, trend: dict) -> None:
    for png in all_plots(funnel, trend):
        chunks = png_chunks(png)
        kinds = [kind for kind, _ in chunks]
        assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
        width, height = struct.unpack(">II", chunks[0][1][:8])
        assert (width, height) == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
        assert len(png) < 100_000
        # No software version or time stamp: nothing that changes between runs.
        assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(kinds)


def test_the_same_document_gives_the_same_bytes_whatever_the_users_style(
    funnel: dict, trend: dict
) -> None:
    first = all_plots(funnel, trend)
    assert all_plots(funnel, trend) == first
    with matplotlib.rc_context({"lines.linewidth": 5, "axes.facecolor": "black", "font.size": 20}):
        assert all_plots(funnel, trend) == first


def test_density_curves_are_the_scipy_posteriors_over_their_central_mass(funnel: dict) -> None:
    x, curves = density_curves(funnel)
    frozen = {
        v["variant_key"]: stats.beta(v["posterior"]["alpha"], v["posterior"]["beta"])
        for v in funnel["variants"]
    }
    tail = (1 - CENTRAL_MASS) / 2
    assert x[0] == pytest.approx(min(d.ppf(tail) for d in frozen.values()), rel=1e-9)
    assert x[-1] == pytest.approx(max(d.isf(tail) for d in frozen.values()), rel=1e-9)
    assert list(curves) == ["control", "test", "slow"]
    for key, density in curves.items():
        np.testing.assert_allclose(density, frozen[key].pdf(x), rtol=1e-9, atol=1e-12)


def test_density_maxima_sit_at_the_posterior_modes(funnel: dict, trend: dict) -> None:
    for metric in (funnel, trend):
        x, curves = density_curves(metric)
        step = x[1] - x[0]
        for v in metric["variants"]:
            p = v["posterior"]
            if p["distribution"] == "beta":
                mode = (p["alpha"] - 1) / (p["alpha"] + p["beta"] - 2)
            else:
                mode = (p["shape"] - 1) / p["rate"]
            peak = x[np.argmax(curves[v["variant_key"]])]
            assert abs(peak - mode) <= step, (v["variant_key"], peak, mode)


def test_cumulative_series_is_the_running_total_of_the_daily_data(trend: dict) -> None:
    series = cumulative_series(trend)
    assert list(series) == ["control", "test", "slow"]
    for v in trend["variants"]:
        days, totals = series[v["variant_key"]]
        np.testing.assert_array_equal(days, np.array(v["days"], dtype="datetime64[D]"))
        np.testing.assert_array_equal(totals, np.cumsum(v["data"]))
    assert series["slow"][1][-1] == sum(trend["variants"][2]["data"])


def test_funnels_get_the_posterior_plot_only_and_trends_both(funnel: dict, trend: dict) -> None:
    funnel_plots, trend_plots = metric_plots(funnel), metric_plots(trend)
    assert [p.alt for p in funnel_plots] == ["purchase: posterior density per variant"]
    assert [p.alt for p in trend_plots] == [
        "searches: posterior density per variant",
        "searches: cumulative daily search per variant",
    ]
    assert funnel_plots[0].png == posterior_plot(funnel)
    assert trend_plots[1].png == cumulative_plot(trend)


def test_dollar_signs_in_names_are_text_not_mathtext() -> None:
    """`$\\nosuchcommand$` would fail as mathtext; names are drawn literally."""
    metric = trend_metric(
        "a$b$c",
        "$nosuch$",
        {"control": [1, 2, 3], r"$\nosuchcommand$": [2, 2, 2]},
        {"control": 10, r"$\nosuchcommand$": 10},
    )
    for plot in metric_plots(metric):
        assert plot.png.startswith(PNG_SIGNATURE)


def test_an_unknown_distribution_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown posterior distribution 'lognormal'"):
        posterior_of({"distribution": "lognormal", "mu": 0.0, "sigma": 1.0})
