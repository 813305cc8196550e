"""The CUPED and revenue-hurdle tables of the report and the Dagster metadata.

The CUPED block is computed by the real `cuped_document` from sums written here; the
hurdle block is shaped as `analysis.revenue.hurdle_document` writes it (its numbers come
from sampling, which tests/analysis/test_revenue.py runs).
"""

from __future__ import annotations

from typing import Any

import pytest

from exp_pipeline.analysis.cuped_document import cuped_document
from exp_pipeline.analysis.cuped_sums import CovariateSums
from exp_pipeline.report.model_tables import model_tables
from exp_pipeline.report.render import render_report
from tests.report.statistics_documents import revenue_metric, statistics_document

SUMS = {
    "control": CovariateSums(400, 2000.0, 40_000.0, 1600.0, 30_000.0, 24_000.0),
    "test": CovariateSums(410, 2300.0, 44_000.0, 1650.0, 31_000.0, 26_000.0),
}


def quantity(median: float, r_hat: float = 1.002) -> dict[str, Any]:
    return {
        "mean": median,
        "median": median,
        "sd": median / 10,
        "interval": [median * 0.8, median * 1.2],
        "r_hat": r_hat,
        "ess_bulk": 2100.0,
        "ess_tail": 1900.0,
    }


def hurdle() -> dict[str, Any]:
    def variant(key: str, conversion: float, order: float) -> dict[str, Any]:
        return {
            "variant_key": key,
            "subjects": 4000,
            "converters": int(4000 * conversion),
            "revenue_per_subject": quantity(conversion * order),
            "conversion": quantity(conversion),
            "order_value": quantity(order, r_hat=1.006),
            "log_value_mu": quantity(3.6),
            "log_value_sigma": quantity(0.6),
        }

    test = {**variant("test", 0.13, 52.0), "lift": quantity(0.4), "probability_beats_control": 0.97}
    return {
        "model": "revenue_hurdle",
        "variants": [variant("control", 0.10, 50.0), test],
        "sampling": {"draws": 1000, "tune": 500, "chains": 4},
        "diagnostics": {
            "chains": 4,
            "draws": 1000,
            "divergences": 0,
            "max_r_hat": 1.006,
            "min_ess_bulk": 2100.0,
            "min_ess_tail": 1900.0,
        },
    }


def revenue_with_models() -> dict[str, Any]:
    metric = revenue_metric()
    metric["cuped"] = cuped_document({"cuped": {"lookback_days": 14}}, SUMS, "control")
    metric["hurdle"] = hurdle()
    return metric


def test_tables_hold_the_blocks_numbers() -> None:
    metric = revenue_with_models()
    cuped, model = model_tables(metric)
    block = metric["cuped"]
    assert cuped.title == "CUPED (14-day lookback)"
    assert f"variance reduced by {block['variance_reduction']:.1%}" in cuped.summary
    assert [row["variant"] for row in cuped.rows] == ["control", "test"]
    assert cuped.rows[1]["adjusted_mean"] == block["variants"][1]["adjusted_mean"]
    assert cuped.rows[1]["p_value"] == block["frequentist"]["test"]["p_value"]
    assert cuped.rows[0]["p_value"] is None and cuped.rows[0]["lift_over_control_95"] == ""
    assert set(cuped.rows[0]) == set(cuped.columns)
    assert model.rows[1]["revenue_per_subject"] == pytest.approx(0.13 * 52.0)
    assert model.rows[0]["max_r_hat"] == 1.006 and model.rows[1]["min_ess_bulk"] == 2100.0
    assert model.rows[1]["lift_95"] == "[+32.0%, +48.0%]"
    assert "max r_hat 1.0060" in model.summary and "0 divergences" in model.summary


def test_metrics_without_the_blocks_have_no_tables() -> None:
    assert model_tables(revenue_metric()) == []


def test_blocks_without_numbers_say_why() -> None:
    metric = revenue_metric()
    metric["cuped"] = cuped_document(
        {"cuped": {"lookback_days": 7}},
        {"control": SUMS["control"], "test": CovariateSums(1, 1.0, 1.0, 0.0, 0.0, 0.0)},
        "control",
    )
    metric["hurdle"] = {"model": "revenue_hurdle", "reason": "too few converters"}
    cuped, model = model_tables(metric)
    assert cuped.rows == [] and cuped.summary.startswith("no verdict: ")
    assert model.rows == [] and model.summary == "no model: too few converters"


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_report_shows_both_tables_after_the_metric(fmt: str) -> None:
    document = statistics_document()
    document["metrics"][0] = revenue_with_models()
    text = render_report(document, fmt)
    metric_at = text.index("revenue")
    cuped_at = text.index("revenue: CUPED (14-day lookback)")
    hurdle_at = text.index("revenue: revenue hurdle")
    assert metric_at < cuped_at < hurdle_at
    assert "adjusted mean" in text and "max r hat" in text
    assert "4000" in text  # counts stay whole numbers
