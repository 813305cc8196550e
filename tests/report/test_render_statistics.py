"""Continuous and ratio metrics, frequentist blocks and sample-ratio facts in every output.

The terminal tables, the Markdown and HTML reports and the Dagster metadata must all show
the document's figures: each cell is checked against the document's own number,
formatted here independently.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from assets.analysis import _frequentist_table, _headlines, _metric_table
from exp_pipeline.report.render import render_report
from exp_pipeline.reporting import results_text, verdict
from tests.report.statistics_documents import statistics_document
from tests.report.test_render import PNG_SIGNATURE, decoded_images, markdown_table, parse


@pytest.fixture
def document() -> dict[str, Any]:
    return statistics_document()


def signed(value: float) -> str:
    return f"{value * 100:+.1f}%"


def test_markdown_shows_the_continuous_table_notes_and_comparisons(document: dict) -> None:
    revenue = document["metrics"][0]
    md = render_report(document, "md")
    control, test = markdown_table(md, "revenue")
    assert control[:4] == ["control", "4000", "2.16e+04", "5.4"]
    low, high = revenue["variants"][1]["lift_interval"]
    assert test[-1] == f"{signed(7.1 / 5.4 - 1)} [{signed(low)}, {signed(high)}]"
    assert "*informative prior: 100 subjects' worth at a mean of 5 per subject*" in md
    assert "*values capped at the 99th percentile (310.5): 81 subjects capped*" in md
    assert "- **Sample ratio:** chi-square p = 0.32, no mismatch" in md
    block = revenue["frequentist"]["test"]
    beats = revenue["variants"][1]["probability_beats_control"]
    row = next(line for line in md.splitlines() if line.startswith(f"| test | {beats:.3f} |"))
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
    assert cells[2] == "{:.4g} \\[{:.4g}, {:.4g}\\]".format(block["effect"], *block["ci"])
    assert cells[4] == f"{block['p_value']:.4g}"
    assert cells[5] == ""  # the primary metric is not Holm-adjusted
    assert cells[6] == f"{block['sequential']['p_value']:.4g}"
    # The Normal posteriors are plotted; there is no daily series for these metrics.
    section = md.split("## revenue", 1)[1].split("## errors", 1)[0]
    (png,) = decoded_images(section)
    assert png.startswith(PNG_SIGNATURE)


def test_ratio_rows_and_the_lower_is_better_verdict(document: dict) -> None:
    errors = document["metrics"][1]
    page = parse(render_report(document, "html"))
    rows = [r for r in page.rows if len(r) == 8 and r[0] in ("control", "test")]
    assert rows[0][:5] == ["control", "5000", "270", "1.26e+04", "0.02143"]
    # Errors went up tenfold: control, the lower, is best.
    assert verdict(errors) == "control wins (P(best) 1.000, significant)"
    comparison = next(r for r in page.rows if len(r) == 9 and r[0] == "test" and r[5])
    assert comparison[5] == f"{errors['frequentist']['test']['holm_p_value']:.4g}"


def test_terminal_carries_the_p_values(document: dict) -> None:
    text = results_text([document])
    assert "sample ratio: chi-square p = 0.32, no mismatch" in text
    errors = document["metrics"][1]["frequentist"]["test"]
    p, holm = errors["p_value"], errors["holm_p_value"]
    line = next(line for line in text.splitlines() if line.startswith("errors") and "test" in line)
    assert f"{p:.4g} ({holm:.4g})" in line


def test_a_metric_without_a_verdict_says_why_everywhere(document: dict) -> None:
    revenue = document["metrics"][0]
    for variant in revenue["variants"]:
        for key in ("posterior", "credible_interval", "lift_interval", "probability_beats_control"):
            variant.pop(key, None)
    revenue.update(
        probability={},
        best_variant=None,
        reason="variant 'control' n must be at least 2 to estimate a variance, got 1",
    )
    revenue["frequentist"] = {"test": {"reason": "variant 'control' n must be at least 2"}}
    assert verdict(revenue).startswith("no verdict: variant 'control' n must be at least 2")
    md = render_report(document, "md")
    section = md.split("## revenue", 1)[1].split("## errors", 1)[0]
    assert "data:image/png" not in section
    assert "not testable: variant 'control' n must be at least 2" in section
    assert results_text([document])
    assert _frequentist_table(revenue).records[0].data["method"].startswith("not testable")
    assert set(_headlines(revenue)) == {
        "revenue.expected_loss",
        "revenue.control.mean",
        "revenue.test.mean",
    }


def test_dagster_metadata_tables_and_headlines(document: dict) -> None:
    revenue, errors = document["metrics"]
    table = _metric_table(revenue)
    test = table.records[1].data
    assert test["value"] == pytest.approx(7.1 * 4100)
    assert test["rate_or_mean"] == 7.1
    assert test["probability_beats_control"] == revenue["variants"][1]["probability_beats_control"]
    block = errors["frequentist"]["test"]
    row = _frequentist_table(errors).records[0].data
    assert (row["method"], row["p_value"], row["holm_p_value"]) == (
        "delta_method_ratio_z",
        block["p_value"],
        block["holm_p_value"],
    )
    numbers = _headlines(errors)
    assert numbers["errors.test.ratio"] == pytest.approx(0.2)
    assert numbers["errors.test.always_valid_p_value"] == block["sequential"]["p_value"]
    assert "errors.control.p_value" not in numbers  # control is the baseline, not a test
