"""One experiment's analyst report as Markdown or a standalone HTML page, plots included.

The report is built from a results document alone (schema in the README), so it shows
exactly what was materialised, whether rendered right after a run or later from the
warehouse. Both formats come from one neutral layout (facts, then per metric a table, the
verdict and the plots), so Markdown and HTML can never disagree on a number. Every piece
of text that comes from the catalog or the events (keys, names, variants) is escaped: in
HTML with `html.escape`, in Markdown with backslash escapes, so a hostile name is shown
as text and never becomes markup. Images are embedded as base64 `data:` URIs, and the
HTML page forbids every external resource, so a report is one self-contained file to
attach or archive.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Literal

from exp_pipeline.analysis.group_results import units_note
from exp_pipeline.report.model_tables import ModelTable, model_tables
from exp_pipeline.report.plots import Plot, metric_plots, png_data_uri
from exp_pipeline.report.segment_tables import segment_tables
from exp_pipeline.reporting import (
    interval_text,
    optional_number,
    p_values,
    sample_ratio_text,
    variant_measures,
    verdict,
)

Format = Literal["md", "html"]

FUNNEL_HEADERS = [
    "variant",
    "exposures",
    "step counts",
    "conversions",
    "rate",
    "95% credible interval",
    "P(best)",
    "lift over control (95% CI)",
]
TREND_HEADERS = [
    "variant",
    "exposure",
    "count",
    "mean",
    "95% credible interval",
    "P(best)",
    "lift over control (95% CI)",
]
TREND_NOTE = (
    "mean and interval: events per control-sized audience "
    "(count divided by the exposure relative to control; 1 when unknown)"
)
CONTINUOUS_HEADERS = [
    "variant",
    "exposed",
    "sum",
    "mean",
    "95% credible interval",
    "P(best)",
    "lift over control (95% CI)",
]
RATIO_HEADERS = [
    "variant",
    "exposed",
    "numerator",
    "denominator",
    "ratio",
    "95% credible interval",
    "P(best)",
    "lift over control (95% CI)",
]
COMPARISON_HEADERS = [
    "against control",
    "P(beats control)",
    "difference (95% CI)",
    "relative (95% CI)",
    "p-value",
    "Holm p",
    "always-valid p",
    "95% confidence sequence",
    "e-BH adjusted",
]
# Characters that can start Markdown markup inside a line, or an HTML tag or entity.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$&])")

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
th { background: #f3f3f3; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.kind, .note { color: #555; }
.verdict { padding: 0.4rem 0.6rem; border-left: 4px solid #b0b0b0; background: #f7f7f7; }
.verdict.significant { border-left-color: #2e7d32; }
img { max-width: 100%; display: block; margin: 0.5rem 0; }
"""
# Inline styles and data: images only: nothing loads from elsewhere and no script runs.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class _Section:
    """One metric laid out for either format; every string is plain, unescaped text.

    A row's first cell is the variant key (catalog text, escaped by each format); the
    other cells are numbers formatted here.
    """

    title: str
    subtitle: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str]
    verdict: str
    significant: bool
    plots: list[Plot]
    # Each treatment against control, frequentist and always-valid (first cell a variant).
    comparisons: list[list[str]]


def escape_markdown(text: str) -> str:
    """`text` shown literally in Markdown: markup characters backslash-escaped, one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def markdown_image(png: bytes, alt: str) -> str:
    """`![alt](data:image/png;base64,...)`: an image inside the Markdown text itself."""
    return f"![{escape_markdown(alt)}]({png_data_uri(png)})"


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _points(value: float) -> str:
    """A difference of two conversion rates, in percentage points."""
    return f"{value * 100:+.2f} pp"


def _signed_percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _lift(
    value: float | None, control_value: float | None, interval: list[float | None] | None
) -> str:
    """Observed lift over control and the posterior lift interval; control is the baseline.

    The point lift is left out where control's value is 0 (or unknown) and a ratio means
    nothing; an interval the posteriors leave unbounded says so.
    """
    if interval is None:
        return "baseline"
    bounds = interval_text(interval, _signed_percent)
    if not control_value or value is None:
        return bounds
    return f"{_signed_percent(value / control_value - 1)} {bounds}"


def _control(metric: dict[str, Any]) -> dict[str, Any]:
    """Control: the variant without a lift interval (documents list it first)."""
    return next(v for v in metric["variants"] if "lift_interval" not in v)


def _measured_rows(metric: dict[str, Any]) -> list[list[str]]:
    """Continuous and ratio rows: the variant's measures, posterior interval, P(best), lift."""
    control_rate = variant_measures(metric, _control(metric))[2]
    rows = []
    for v in metric["variants"]:
        probability = metric["probability"].get(v["variant_key"])
        exposed, value, rate = variant_measures(metric, v)
        analysed = "posterior" in v
        lift_text = _lift(rate, control_rate, v.get("lift_interval")) if analysed else ""
        measures = [str(exposed), _number(value), optional_number(rate, _number)]
        if metric["kind"] == "ratio":
            measures.insert(2, _number(v["denominator"]))
        rows.append(
            [
                v["variant_key"],
                *measures,
                interval_text(v.get("credible_interval"), _number),
                optional_number(probability, "{:.3f}".format),
                lift_text,
            ]
        )
    return rows


def _comparison_rows(metric: dict[str, Any]) -> list[list[str]]:
    """Per treatment: P(beats control), the fixed-horizon test, the always-valid test."""
    scale = _points if metric["kind"] == "funnel" else _number
    rows = []
    for v in metric["variants"]:
        block = metric.get("frequentist", {}).get(v["variant_key"])
        if block is None:
            continue
        beats = optional_number(v.get("probability_beats_control"), "{:.3f}".format)
        if "reason" in block:
            untestable = f"not testable: {block['reason']}"
            blanks = [""] * (len(COMPARISON_HEADERS) - 3)
            rows.append([v["variant_key"], beats, untestable, *blanks])
            continue
        _, always_valid = p_values(metric, v["variant_key"])
        sequential = block["sequential"]
        rows.append(
            [
                v["variant_key"],
                beats,
                f"{optional_number(block['effect'], scale)} {interval_text(block['ci'], scale)}",
                f"{optional_number(block['relative_effect'], _signed_percent)} "
                f"{interval_text(block['relative_ci'], _signed_percent)}",
                optional_number(block["p_value"], _number),
                optional_number(block["holm_p_value"], _number),
                always_valid,
                interval_text(sequential["confidence_sequence"], scale),
                optional_number(sequential["e_bh_adjusted"], _number),
            ]
        )
    return rows


def _notes(metric: dict[str, Any]) -> list[str]:
    """What shaped the numbers: the unit, a stated prior, winsorisation, dispersion."""
    notes = units_note(metric)
    if metric.get("prior"):
        prior = metric["prior"]
        notes.append(
            f"informative prior: {prior['weight']:g} subjects' worth at a mean of "
            f"{prior['mean']:g} per subject"
        )
    winsorisation = metric.get("winsorisation")
    if winsorisation:
        notes.append(
            f"values capped at the {winsorisation['percentile']:g}th percentile "
            f"({optional_number(winsorisation['cap'], _number)}): "
            f"{winsorisation['capped_subjects']} subjects capped"
        )
    dispersion = metric.get("dispersion")
    if dispersion and "phi" in dispersion:
        widened = (
            f"posteriors and the rate test widened {dispersion['widening']:.3g}×"
            if dispersion["overdispersed"]
            else "Poisson model kept"
        )
        notes.append(
            f"dispersion of per-subject counts φ = {dispersion['phi']:.3g} "
            f"(p = {dispersion['p_value']:.3g}): {widened}"
        )
    return notes


def _funnel_rows(metric: dict[str, Any]) -> list[list[str]]:
    control_rate = _control(metric)["conversion_rate"]
    rows = []
    for v in metric["variants"]:
        low, high = v["credible_interval"]
        rows.append(
            [
                v["variant_key"],
                str(v["exposures"]),
                " → ".join(str(n) for n in v["step_counts"]),
                str(v["step_counts"][-1]),
                _percent(v["conversion_rate"]),
                f"[{_percent(low)}, {_percent(high)}]",
                f"{metric['probability'][v['variant_key']]:.3f}",
                _lift(v["conversion_rate"], control_rate, v.get("lift_interval")),
            ]
        )
    return rows


def _trend_mean(variant: dict[str, Any]) -> float:
    """Count per control-sized audience: the unit of the Gamma posterior and its interval."""
    return variant["count"] / variant["posterior"]["rate"]


def _trend_rows(metric: dict[str, Any]) -> list[list[str]]:
    control_mean = _trend_mean(_control(metric))
    rows = []
    for v in metric["variants"]:
        low, high = v["credible_interval"]
        mean = _trend_mean(v)
        rows.append(
            [
                v["variant_key"],
                str(v["exposure"]),
                str(v["count"]),
                _number(mean),
                f"[{_number(low)}, {_number(high)}]",
                f"{metric['probability'][v['variant_key']]:.3f}",
                _lift(mean, control_mean, v.get("lift_interval")),
            ]
        )
    return rows


def _section(metric: dict[str, Any]) -> _Section:
    notes = _notes(metric)
    kind = metric["kind"]
    if kind == "funnel":
        headers, rows = FUNNEL_HEADERS, _funnel_rows(metric)
        subtitle = "funnel: " + " → ".join(metric["steps"])
    elif kind == "trend":
        headers, rows = TREND_HEADERS, _trend_rows(metric)
        subtitle = f"trend: {metric['event']} ({metric.get('math', 'total')})"
        notes.insert(0, TREND_NOTE)
    elif kind == "continuous":
        headers, rows = CONTINUOUS_HEADERS, _measured_rows(metric)
        subtitle = f"continuous: {metric['property']} of {metric['event']} per exposed subject"
    elif kind == "ratio":
        headers, rows = RATIO_HEADERS, _measured_rows(metric)
        subtitle = f"ratio: {metric['numerator']} / {metric['denominator']}"
    else:
        raise ValueError(f"no report layout for metric kind {kind!r}")
    return _Section(
        title=metric["metric_key"],
        subtitle=subtitle,
        headers=headers,
        rows=rows,
        notes=notes,
        verdict=verdict(metric),
        significant=bool(metric["significant"]),
        plots=[] if "reason" in metric else metric_plots(metric),
        comparisons=_comparison_rows(metric),
    )


def _cell(value: Any) -> str:
    """A model table's value as text: counts whole, other numbers to four digits."""
    if value is None:
        return ""
    if isinstance(value, str | int):
        return str(value)
    return _number(value)


def _table_section(title: str, table: ModelTable) -> _Section:
    """A model or segment table as one more section: a summary line and its rows."""
    return _Section(
        title=title,
        subtitle=table.summary,
        headers=[name.replace("_", " ") for name in table.columns],
        rows=[[_cell(row[name]) for name in table.columns] for row in table.rows],
        notes=[],
        verdict="",
        significant=False,
        plots=[],
        comparisons=[],
    )


def _model_sections(metric: dict[str, Any]) -> list[_Section]:
    """The metric's CUPED and revenue-hurdle blocks, each one more table after it."""
    return [
        _table_section(f"{metric['metric_key']}: {table.title}", table)
        for table in model_tables(metric)
    ]


WEB_COUNTER_HEADERS = [
    "Variant",
    "Impressions",
    "CTA clicks",
    "Form starts",
    "Form submits",
    "Conversions",
    "Unique sessions",
    "Conversion rate",
    "Conversion value",
]


def _web_counters_section(counters: dict[str, dict[str, Any]]) -> _Section:
    """The classic web counters as one more table: counts, no verdict of their own."""
    rows = [
        [
            variant,
            *(
                f"{c[name]:,}"
                for name in ("impressions", "cta_clicks", "form_starts", "form_submits")
            ),
            f"{c['conversions']:,}",
            f"{c['unique_sessions']:,}",
            "n/a" if c["conversion_rate"] is None else f"{c['conversion_rate']:.2%}",
            f"{c['conversion_value_total']:,.2f}",
        ]
        for variant, c in counters.items()
    ]
    return _Section(
        title="Web counters",
        subtitle="counts over the exposed subjects; conversion rate = conversions / impressions",
        headers=WEB_COUNTER_HEADERS,
        rows=rows,
        notes=[],
        verdict="",
        significant=False,
        plots=[],
        comparisons=[],
    )


def _facts(document: dict[str, Any]) -> list[tuple[str, str]]:
    window = document["window"]
    excluded = ", ".join(f"{k} {n}" for k, n in document["excluded"].items() if n)
    return [
        ("Status", document["status"]),
        (
            "Window",
            f"{window['start']} .. {window['end']}"
            + (" (open-ended, so far)" if window["open_ended"] else ""),
        ),
        ("Timezone", document["timezone"]),
        ("Exposures", ", ".join(f"{k} {n}" for k, n in document["exposures"].items())),
        ("Excluded", excluded or "none"),
        *(
            [("Sample ratio", sample_ratio_text(document["sample_ratio_mismatch"]))]
            if "sample_ratio_mismatch" in document
            else []
        ),
    ]


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _markdown_table(
    headers: list[str], rows: list[list[str]], numbers_only: bool = True
) -> list[str]:
    """A table whose first column is catalog text (escaped); the others are numbers,
    escaped too unless `numbers_only` (a reason in a cell can quote catalog text)."""
    lines = [_markdown_row(headers), _markdown_row(["---"] + ["---:"] * (len(headers) - 1))]
    for first, *cells in rows:
        cells = cells if numbers_only else [escape_markdown(c) for c in cells]
        lines.append(_markdown_row([escape_markdown(first), *cells]))
    return lines


def _markdown(title: str, facts: list[tuple[str, str]], sections: list[_Section]) -> str:
    lines = [f"# {escape_markdown(title)}", ""]
    lines += [f"- **{label}:** {escape_markdown(value)}" for label, value in facts]
    for s in sections:
        lines += ["", f"## {escape_markdown(s.title)}", "", f"*{escape_markdown(s.subtitle)}*", ""]
        lines += _markdown_table(s.headers, s.rows)
        for note in s.notes:
            lines += ["", f"*{escape_markdown(note)}*"]
        if s.verdict:
            lines += ["", f"**Verdict:** {escape_markdown(s.verdict)}"]
        if s.comparisons:
            lines += ["", *_markdown_table(COMPARISON_HEADERS, s.comparisons, numbers_only=False)]
        for plot in s.plots:
            lines += ["", markdown_image(plot.png, plot.alt)]
    return "\n".join(lines) + "\n"


def _html_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    e = html.escape
    lines = ["<table>", "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in headers)]
    lines.append("</tr></thead>")
    lines.append("<tbody>")
    for row in rows:
        first, *numbers = row
        cells = f'<th scope="row">{e(first)}</th>' + "".join(
            f'<td class="number">{e(c)}</td>' for c in numbers
        )
        lines.append(f"<tr>{cells}</tr>")
    lines += ["</tbody>", "</table>"]
    return lines


def _html(title: str, facts: list[tuple[str, str]], sections: list[_Section]) -> str:
    e = html.escape
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
        '<dl class="facts">',
        *(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>" for label, value in facts),
        "</dl>",
    ]
    for s in sections:
        lines += ["<section>", f"<h2>{e(s.title)}</h2>", f'<p class="kind">{e(s.subtitle)}</p>']
        lines += _html_table(s.headers, s.rows)
        lines += [f'<p class="note">{e(note)}</p>' for note in s.notes]
        css_class = "verdict significant" if s.significant else "verdict"
        if s.verdict:
            lines.append(f'<p class="{css_class}"><strong>Verdict:</strong> {e(s.verdict)}</p>')
        if s.comparisons:
            lines += _html_table(COMPARISON_HEADERS, s.comparisons)
        lines += [f'<img alt="{e(p.alt)}" src="{png_data_uri(p.png)}">' for p in s.plots]
        lines.append("</section>")
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"


def render_report(document: dict[str, Any], fmt: Format) -> str:
    """The report of one experiment's results `document`, as Markdown (`md`) or HTML."""
    renderers = {"md": _markdown, "html": _html}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r} (md or html)")
    title = f"Experiment report: {document['experiment_key']}"
    sections = [s for m in document["metrics"] for s in (_section(m), *_model_sections(m))]
    if document.get("web_counters"):
        sections.append(_web_counters_section(document["web_counters"]))
    sections += [_table_section(table.title, table) for table in segment_tables(document)]
    return renderers[fmt](title, _facts(document), sections)
