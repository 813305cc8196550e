"""Segment tables: the breakdown and pooling blocks of a document as report and UI tables."""

from __future__ import annotations

from typing import Any

from exp_pipeline.report.segment_tables import segment_tables


def _block(p: float, e_bh: float) -> dict[str, Any]:
    return {
        "control_value": 0.1,
        "treatment_value": 0.12,
        "relative_ci": [-0.1, 0.5],
        "p_value": p,
        "sequential": {"p_value": 0.9, "e_bh_adjusted": e_bh},
    }


def _segment(name: str, mismatch: bool) -> dict[str, Any]:
    return {
        "segment": name,
        "exposures": {"control": 120, "test": 118},
        "sample_ratio_mismatch": {"p_value": 0.0001 if mismatch else 0.9, "mismatch": mismatch},
        "metrics": [
            {"metric_key": "buying", "frequentist": {"test": _block(0.04, 0.7)}},
            {"metric_key": "pages", "reason": "trend counts are ..."},
        ],
    }


def _lift(median: float) -> dict[str, Any]:
    return {"median": median, "interval": [-0.1, 0.3], "r_hat": 1.002, "ess_bulk": 1500.0}


DOCUMENT = {
    "segments": {
        "e_bh_family_size": 7,
        "attributes": [
            {
                "attribute": "country",
                "pooling": True,
                "segments": [_segment("DE", False), _segment("(none)", True)],
                "pooled": {
                    "metric_key": "buying",
                    "merged_into_other": ["LU"],
                    "left_out": [],
                    "segments": [
                        {
                            "segment": "DE",
                            "variant": "test",
                            "control": {"exposed": 120, "converted": 12},
                            "treatment": {"exposed": 118, "converted": 20},
                            "raw_lift": 0.7,
                            "raw_interval": [0.0, 2.0],
                            "shrunken_lift": _lift(0.2),
                        }
                    ],
                    "pooled": [
                        {"variant": "test", "lift": _lift(0.1), "heterogeneity": _lift(0.05)}
                    ],
                    "diagnostics": {"max_r_hat": 1.003, "min_ess_bulk": 900.0, "divergences": 0},
                    "sampling": {"chains": 4, "draws": 1000},
                },
            },
            {"attribute": "device.platform", "pooling": False, "segments": []},
        ],
    }
}


def test_every_segment_comparison_is_a_row_and_every_figure_is_kept() -> None:
    breakdown, pooling, platform = segment_tables(DOCUMENT)
    assert breakdown.title == "segments by country"
    assert [(r["segment"], r["metric"], r["variant"]) for r in breakdown.rows] == [
        ("DE", "buying", "test"),
        ("(none)", "buying", "test"),
    ]
    row = breakdown.rows[0]
    assert row["exposures"] == "control 120, test 118"
    assert (row["p_value"], row["always_valid_p"], row["e_bh_adjusted"]) == (0.04, 0.9, 0.7)
    assert row["relative_effect_95"] == "[-10.0%, +50.0%]"
    assert set(row) == set(breakdown.columns)
    assert "e-BH over all 7 comparisons" in breakdown.summary
    assert "not broken down: pages" in breakdown.summary
    assert "SAMPLE RATIO MISMATCH in (none)" in breakdown.summary

    assert pooling.title == "pooled lift of buying across country"
    (lift,) = pooling.rows
    assert (lift["raw_lift"], lift["shrunken_lift"], lift["r_hat"]) == (0.7, 0.2, 1.002)
    assert lift["control"] == "12/120"
    assert "typical segment +10.0%" in pooling.summary
    assert "max r_hat 1.0030" in pooling.summary and "merged into (other): LU" in pooling.summary
    assert platform.rows == [] and platform.title == "segments by device.platform"


def test_pooling_without_a_model_says_why() -> None:
    attribute = {
        "attribute": "country",
        "segments": [],
        "pooled": {"metric_key": "buying", "reason": "partial pooling needs two segments"},
    }
    _, pooling = segment_tables({"segments": {"e_bh_family_size": 0, "attributes": [attribute]}})
    assert (
        pooling.rows == [] and pooling.summary == "not pooled: partial pooling needs two segments"
    )
    assert segment_tables({}) == []
