"""The CUPED and revenue-hurdle blocks of a metric as tables, for the report and the UI.

One neutral layout (a title, a one-line summary, typed columns and rows of plain values)
that the analyst report renders as text and the Dagster metadata as a table, so the two
show the same numbers. Built from the results document alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exp_pipeline.reporting import interval_text, verdict

_CUPED_COLUMNS = {
    "variant": "string",
    "exposures": "int",
    "mean": "float",
    "pre_exposure_mean": "float",
    "adjusted_mean": "float",
    "variance_reduction": "float",
    "credible_interval_95": "string",
    "probability_best": "float",
    "probability_beats_control": "float",
    "lift_over_control_95": "string",
    "difference_95": "string",
    "p_value": "float",
}
_HURDLE_COLUMNS = {
    "variant": "string",
    "subjects": "int",
    "converters": "int",
    "conversion": "float",
    "order_value": "float",
    "revenue_per_subject": "float",
    "revenue_per_subject_95": "string",
    "lift_95": "string",
    "probability_beats_control": "float",
    "max_r_hat": "float",
    "min_ess_bulk": "float",
}


@dataclass(frozen=True)
class ModelTable:
    """One block of a metric: `columns` maps each column to its type (string, int, float);
    `rows` hold plain values (None where the document has none)."""

    title: str
    summary: str
    columns: dict[str, str]
    rows: list[dict[str, Any]]


def _four(value: float) -> str:
    return f"{value:.4g}"


def _percent(value: float) -> str:
    return f"{value:+.1%}"


def _cuped_table(block: dict[str, Any]) -> ModelTable:
    title = f"CUPED ({block['lookback_days']:g}-day lookback)"
    if "theta" not in block:
        return ModelTable(title, verdict(block), _CUPED_COLUMNS, [])
    rows = []
    for v in block["variants"]:
        test = block["frequentist"].get(v["variant_key"], {})
        rows.append(
            {
                "variant": v["variant_key"],
                "exposures": v["exposures"],
                "mean": v["mean"],
                "pre_exposure_mean": v["covariate_mean"],
                "adjusted_mean": v["adjusted_mean"],
                "variance_reduction": v["variance_reduction"],
                "credible_interval_95": interval_text(v.get("credible_interval"), _four),
                "probability_best": block["probability"].get(v["variant_key"]),
                "probability_beats_control": v.get("probability_beats_control"),
                "lift_over_control_95": interval_text(v.get("lift_interval"), _percent),
                "difference_95": interval_text(test.get("ci"), _four),
                "p_value": test.get("p_value"),
            }
        )
    summary = (
        f"θ = {block['theta']:.4g}, variance reduced by {block['variance_reduction']:.1%}; "
        f"adjusted verdict: {verdict(block)}"
    )
    return ModelTable(title, summary, _CUPED_COLUMNS, rows)


def _hurdle_table(block: dict[str, Any]) -> ModelTable:
    title = "revenue hurdle (conversion × log-normal order value)"
    if "reason" in block:
        return ModelTable(title, f"no model: {block['reason']}", _HURDLE_COLUMNS, [])
    rows = []
    for v in block["variants"]:
        quantities = [v[k] for k in ("conversion", "order_value", "revenue_per_subject")]
        lift = v.get("lift")
        if lift:
            quantities.append(lift)
        r_hats = [q["r_hat"] for q in quantities]
        ess = [q["ess_bulk"] for q in quantities]
        rows.append(
            {
                "variant": v["variant_key"],
                "subjects": v["subjects"],
                "converters": v["converters"],
                "conversion": v["conversion"]["median"],
                "order_value": v["order_value"]["median"],
                "revenue_per_subject": v["revenue_per_subject"]["median"],
                "revenue_per_subject_95": interval_text(
                    v["revenue_per_subject"]["interval"], _four
                ),
                "lift_95": interval_text(lift["interval"] if lift else None, _percent),
                "probability_beats_control": v.get("probability_beats_control"),
                "max_r_hat": None if None in r_hats else max(r_hats),
                "min_ess_bulk": None if None in ess else min(ess),
            }
        )
    d, s = block["diagnostics"], block["sampling"]
    summary = (
        f"posterior medians; {s['chains']} chains × {s['draws']} draws, max r_hat "
        f"{d['max_r_hat']:.4f}, min ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergences"
    )
    return ModelTable(title, summary, _HURDLE_COLUMNS, rows)


def model_tables(metric: dict[str, Any]) -> list[ModelTable]:
    """The metric's CUPED and hurdle tables, those it has, in that order."""
    tables = []
    if "cuped" in metric:
        tables.append(_cuped_table(metric["cuped"]))
    if "hurdle" in metric:
        tables.append(_hurdle_table(metric["hurdle"]))
    return tables
