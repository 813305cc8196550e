"""The segment breakdown and the pooled segment lifts as tables, for the report and the UI.

Same layout as the model tables (`ModelTable`: title, one-line summary, typed columns,
rows of plain values), so the analyst report and the Dagster metadata show the same
numbers. Built from the results document alone: one breakdown table per segment attribute
(a row per segment, metric and treatment) and, where the attribute pools, one table of
raw and shrunken lifts with their diagnostics.
"""

from __future__ import annotations

from typing import Any

from exp_pipeline.report.model_tables import ModelTable
from exp_pipeline.reporting import interval_text

_BREAKDOWN_COLUMNS = {
    "segment": "string",
    "exposures": "string",
    "srm_p_value": "float",
    "metric": "string",
    "variant": "string",
    "control_value": "float",
    "treatment_value": "float",
    "relative_effect_95": "string",
    "p_value": "float",
    "always_valid_p": "float",
    "e_bh_adjusted": "float",
    "note": "string",
}
_POOLING_COLUMNS = {
    "segment": "string",
    "variant": "string",
    "control": "string",
    "treatment": "string",
    "raw_lift": "float",
    "raw_lift_95": "string",
    "shrunken_lift": "float",
    "shrunken_lift_95": "string",
    "r_hat": "float",
    "ess_bulk": "float",
}


def _percent(value: float) -> str:
    return f"{value:+.1%}"


def _breakdown_rows(segment: dict[str, Any]) -> list[dict[str, Any]]:
    exposures = ", ".join(f"{v} {n}" for v, n in segment["exposures"].items())
    rows = []
    for metric in segment["metrics"]:
        for variant, block in metric.get("frequentist", {}).items():
            sequential = block.get("sequential", {})
            rows.append(
                {
                    "segment": segment["segment"],
                    "exposures": exposures,
                    "srm_p_value": segment["sample_ratio_mismatch"]["p_value"],
                    "metric": metric["metric_key"],
                    "variant": variant,
                    "control_value": block.get("control_value"),
                    "treatment_value": block.get("treatment_value"),
                    "relative_effect_95": interval_text(block.get("relative_ci"), _percent),
                    "p_value": block.get("p_value"),
                    "always_valid_p": sequential.get("p_value"),
                    "e_bh_adjusted": sequential.get("e_bh_adjusted"),
                    "note": block.get("reason", ""),
                }
            )
    return rows


def _breakdown_table(attribute: dict[str, Any], family_size: int) -> ModelTable:
    segments = attribute["segments"]
    skipped = sorted({m["metric_key"] for s in segments for m in s["metrics"] if "reason" in m})
    mismatched = [s["segment"] for s in segments if s["sample_ratio_mismatch"]["mismatch"]]
    summary = (
        f"{len(segments)} segments; e-BH over all {family_size} comparisons, overall and "
        "per segment"
        + (f"; not broken down: {', '.join(skipped)} (see the document)" if skipped else "")
        + (f"; SAMPLE RATIO MISMATCH in {', '.join(mismatched)}" if mismatched else "")
    )
    rows = [row for s in segments for row in _breakdown_rows(s)]
    return ModelTable(f"segments by {attribute['attribute']}", summary, _BREAKDOWN_COLUMNS, rows)


def _counts(side: dict[str, int]) -> str:
    return f"{side['converted']}/{side['exposed']}"


def _pooling_table(attribute: dict[str, Any]) -> ModelTable:
    pooled = attribute["pooled"]
    title = f"pooled lift of {pooled['metric_key']} across {attribute['attribute']}"
    if "reason" in pooled:
        return ModelTable(title, f"not pooled: {pooled['reason']}", _POOLING_COLUMNS, [])
    rows = [
        {
            "segment": s["segment"],
            "variant": s["variant"],
            "control": _counts(s["control"]),
            "treatment": _counts(s["treatment"]),
            "raw_lift": s["raw_lift"],
            "raw_lift_95": interval_text(s["raw_interval"], _percent),
            "shrunken_lift": s["shrunken_lift"]["median"],
            "shrunken_lift_95": interval_text(s["shrunken_lift"]["interval"], _percent),
            "r_hat": s["shrunken_lift"]["r_hat"],
            "ess_bulk": s["shrunken_lift"]["ess_bulk"],
        }
        for s in pooled["segments"]
    ]
    typical = "; ".join(
        f"{p['variant']}: typical segment {_percent(p['lift']['median'])} "
        f"{interval_text(p['lift']['interval'], _percent)}"
        + (f", tau {p['heterogeneity']['median']:.3f}" if p["heterogeneity"] else "")
        for p in pooled["pooled"]
    )
    d, s = pooled["diagnostics"], pooled["sampling"]
    notes = [
        typical,
        f"{s['chains']} chains × {s['draws']} draws, max r_hat {d['max_r_hat']:.4f}, "
        f"min ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergences",
    ]
    if pooled["merged_into_other"]:
        notes.append(f"merged into (other): {', '.join(pooled['merged_into_other'])}")
    if pooled["left_out"]:
        notes.append(f"left out (too small): {', '.join(pooled['left_out'])}")
    summary = "; ".join(notes)
    return ModelTable(title, summary, _POOLING_COLUMNS, rows)


def segment_tables(document: dict[str, Any]) -> list[ModelTable]:
    """Per segment attribute, its breakdown table and, when it pools, its pooling table."""
    section = document.get("segments") or {}
    tables = []
    for attribute in section.get("attributes", []):
        tables.append(_breakdown_table(attribute, section["e_bh_family_size"]))
        if "pooled" in attribute:
            tables.append(_pooling_table(attribute))
    return tables
