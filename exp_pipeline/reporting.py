"""Plain-text results tables for the terminal (`demo`, `analyze`, `results`).

One block per experiment: its window and exposures, then one row per metric and variant
with the numbers an analyst decides on. Reads results documents only, so it prints the
same thing whether the results were just computed or read back from the warehouse.
"""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

HEADERS = ["metric", "variant", "exposed", "value", "rate", "95% CI", "P(best)", "lift 95% CI"]


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _rows(metric: dict[str, Any]) -> list[list[str]]:
    rows = []
    for v in metric["variants"]:
        if metric["kind"] == "funnel":
            exposed, value = v["step_counts"][0], v["step_counts"][-1]
            rate = f"{v['conversion_rate'] * 100:.2f}%"
            low, high = (f"{b * 100:.2f}%" for b in v["credible_interval"])
        else:
            exposed, value, rate = v["exposure"], v["count"], ""
            low, high = (_number(b) for b in v["credible_interval"])
        lift = v.get("lift_interval")
        rows.append(
            [
                metric["metric_key"],
                v["variant_key"],
                str(exposed),
                str(value),
                rate,
                f"[{low}, {high}]",
                f"{metric['probability'][v['variant_key']]:.3f}",
                f"[{_pct(lift[0])}, {_pct(lift[1])}]" if lift else "",
            ]
        )
    return rows


def verdict(metric: dict[str, Any]) -> str:
    """A metric's significance code in words, e.g. `test wins (P(best) 0.972, significant)`.

    The one wording of a verdict: the terminal tables, the analyst reports and the Dagster
    metadata all call this, so an analyst reads the same sentence wherever they look.
    """
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
        rows = [row for metric in doc["metrics"] for row in _rows(metric)]
        table = tabulate(rows, headers=HEADERS, disable_numparse=True) if rows else "  no metrics"
        verdicts = [f"  {m['metric_key']}: {verdict(m)}" for m in doc["metrics"]]
        blocks.append("\n".join([*head, table, *verdicts]))
    return "\n\n".join(blocks)
