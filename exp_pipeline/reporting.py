"""Plain-text results tables for the terminal (`demo`, `analyze`, `results`).

One block per experiment: its window and exposures, then one row per metric and variant
with the numbers an analyst decides on. Reads results documents only, so it prints the
same thing whether the results were just computed or read back from the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tabulate import tabulate

HEADERS = [
    "metric",
    "variant",
    "exposed",
    "value",
    "rate",
    "95% CI",
    "P(best)",
    "lift 95% CI",
    "p (Holm)",
    "always-valid p",
]


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _number(value: float) -> str:
    return f"{value:.4g}"


def optional_number(value: float | None, form: Callable[[float], str]) -> str:
    """`form(value)`, or an empty cell where the document has no number (None)."""
    return "" if value is None else form(value)


def interval_text(bounds: list[float | None] | None, form: Callable[[float], str]) -> str:
    """`[low, high]` with `form` for each bound; "unbounded" where the document has no
    bound (a lift over a control that may be 0), "" where there is no interval at all."""
    if bounds is None:
        return ""
    if None in bounds:
        return "unbounded"
    return f"[{form(bounds[0])}, {form(bounds[1])}]"


# Per kind: a variant's (exposed subjects, value, rate) in its results document.
_MEASURES: dict[str, Callable[[dict[str, Any]], tuple[int, float, float | None]]] = {
    "funnel": lambda v: (v["exposures"], v["step_counts"][-1], v["conversion_rate"]),
    "trend": lambda v: (v["exposure"], v["count"], None),
    "continuous": lambda v: (v["exposures"], v["sum"], v["mean"]),
    "ratio": lambda v: (v["exposures"], v["numerator"], v["ratio"]),
}


def variant_measures(
    metric: dict[str, Any], variant: dict[str, Any]
) -> tuple[int, float, float | None]:
    """A variant's exposed subjects, value and rate, whatever the metric's kind.

    Value: conversions, events, the value sum or the numerator; rate: the conversion
    rate, the mean or the ratio (None for trends, whose rate is their posterior's). The
    one reading of a document's variants for the terminal, the report, the Dagster
    metadata and the flat results table.
    """
    return _MEASURES[metric["kind"]](variant)


def _count(value: float) -> str:
    """Counts as integers, sums of values to four significant digits."""
    return str(int(value)) if float(value).is_integer() else _number(value)


def p_values(metric: dict[str, Any], variant_key: str) -> tuple[str, str]:
    """The fixed-horizon p-value (Holm-adjusted in brackets for secondary metrics) and the
    always-valid p-value of a variant against control, or empty cells."""
    block = metric.get("frequentist", {}).get(variant_key)
    if not block or "reason" in block:
        return "", ""
    fixed = optional_number(block["p_value"], _number)
    if block["holm_p_value"] is not None:
        fixed += f" ({_number(block['holm_p_value'])})"
    return fixed, optional_number(block["sequential"]["p_value"], _number)


def _rows(metric: dict[str, Any]) -> list[list[str]]:
    rows = []
    for v in metric["variants"]:
        exposed, value, rate = variant_measures(metric, v)
        form = (lambda b: f"{b * 100:.2f}%") if metric["kind"] == "funnel" else _number
        probability = metric["probability"].get(v["variant_key"])
        rows.append(
            [
                metric["metric_key"],
                v["variant_key"],
                str(exposed),
                _count(value),
                optional_number(rate, form),
                interval_text(v.get("credible_interval"), form),
                optional_number(probability, "{:.3f}".format),
                interval_text(v.get("lift_interval"), _pct),
                *p_values(metric, v["variant_key"]),
            ]
        )
    return rows


def verdict(metric: dict[str, Any]) -> str:
    """A metric's significance code in words, e.g. `test wins (P(best) 0.972, significant)`.

    The one wording of a verdict: the terminal tables, the analyst reports and the Dagster
    metadata all call this, so an analyst reads the same sentence wherever they look.
    """
    if "reason" in metric:
        return f"no verdict: {metric['reason']}"
    code = metric["significance_code"]
    best = metric["best_variant"]
    p = metric["probability"][best]
    if code == "significant":
        return f"{best} wins (P(best) {p:.3f}, significant)"
    words = {
        "not_enough_exposure": "not enough exposure yet (a variant has under 100 subjects)",
        "low_win_probability": "no variant is best with probability 0.9 or more",
        "high_loss": "the best variant's expected loss is above 0.01",
    }
    return f"not significant: {words.get(code, code)}"


def sample_ratio_text(srm: dict[str, Any]) -> str:
    """The sample-ratio test in words, e.g. `chi-square p = 0.65, no mismatch`."""
    verdict = "MISMATCH: do not trust these results" if srm["mismatch"] else "no mismatch"
    return f"chi-square p = {srm['p_value']:.3g}, {verdict}"


def results_text(documents: list[dict[str, Any]]) -> str:
    """The results of `documents` as terminal tables, one block per experiment."""
    blocks = []
    for doc in documents:
        window = doc["window"]
        exposures = ", ".join(f"{k} {n}" for k, n in doc["exposures"].items())
        excluded = ", ".join(f"{k} {n}" for k, n in doc["excluded"].items() if n) or "none"
        head = [
            f"{doc['experiment_key']} ({doc['status']}; {window['start']} .. "
            f"{window['end']}{' (open-ended, so far)' if window['open_ended'] else ''}; "
            f"{doc['timezone']})",
            f"  exposed: {exposures}; excluded: {excluded}",
        ]
        if "sample_ratio_mismatch" in doc:
            head.append(f"  sample ratio: {sample_ratio_text(doc['sample_ratio_mismatch'])}")
        rows = [row for metric in doc["metrics"] for row in _rows(metric)]
        table = tabulate(rows, headers=HEADERS, disable_numparse=True) if rows else "  no metrics"
        verdicts = [f"  {m['metric_key']}: {verdict(m)}" for m in doc["metrics"]]
        blocks.append("\n".join([*head, table, *verdicts]))
    return "\n\n".join(blocks)
