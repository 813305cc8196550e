"""The analyst report: every variant's numbers, the shared verdict wording, embedded PNGs,
a standalone HTML page, and hostile names shown as text in both formats."""

from __future__ import annotations

import base64
import html
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from exp_pipeline.report.render import render_report
from exp_pipeline.reporting import results_text, verdict
from tests.report.conftest import experiment, funnel_metric, trend_metric

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every tag the report writes: anything else in a page would have come from a name.
PAGE_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "h1", "dl", "dt", "dd", "section"),
    *("h2", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "img"),
}
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def signed(value: float) -> str:
    return f"{value * 100:+.1f}%"


def expected_funnel_rows(metric: dict[str, Any]) -> list[list[str]]:
    rows = []
    for v in metric["variants"]:
        low, high = v["credible_interval"]
        lift = "baseline"
        if "lift_interval" in v:
            point = v["conversion_rate"] / metric["variants"][0]["conversion_rate"] - 1
            lift = f"{signed(point)} [{signed(v['lift_interval'][0])}, "
            lift += f"{signed(v['lift_interval'][1])}]"
        rows.append(
            [
                v["variant_key"],
                str(v["exposures"]),
                " → ".join(map(str, v["step_counts"])),
                str(v["step_counts"][-1]),
                pct(v["conversion_rate"]),
                f"[{pct(low)}, {pct(high)}]",
                f"{metric['probability'][v['variant_key']]:.3f}",
                lift,
            ]
        )
    return rows


def markdown_table(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after `## heading`, split on unescaped pipes."""
    lines = text.split(f"## {heading}\n", 1)[1].splitlines()
    table = [line for line in lines[: lines.index("", 4)] if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in table[2:]]


class Page(HTMLParser):
    """Table rows, tags and attributes of an HTML page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def decoded_images(text: str) -> list[bytes]:
    return [base64.b64decode(m, validate=True) for m in DATA_URI.findall(text)]


def test_markdown_has_the_facts_every_variant_row_and_the_verdicts(document: dict) -> None:
    funnel, trend = document["metrics"]
    md = render_report(document, "md")

    assert md.startswith("# Experiment report: checkout-test\n")
    assert "- **Status:** running" in md
    assert "- **Window:** 2026-11-01T00:00:00Z .. 2026-11-07T00:00:00Z\n" in md
    assert "- **Timezone:** Europe/Paris" in md
    assert "- **Exposures:** control 10000, test 10000, slow 10000" in md
    assert r"- **Excluded:** multiple\_variants 4, bot 7, no\_flag 2" in md
    assert markdown_table(md, "purchase") == expected_funnel_rows(funnel)
    control, test, slow = markdown_table(md, "searches")
    # Means are counts per control-sized audience: control 302, test 334 / (410 / 400).
    assert control[:4] == ["control", "400", "302", "302"]
    assert test[:4] == ["test", "410", "334", "325.9"]
    assert test[-1].startswith("+7.9% [")
    assert slow[4] == "[{:.4g}, {:.4g}]".format(*trend["variants"][2]["credible_interval"])
    assert f"**Verdict:** {verdict(funnel)}" in md
    assert verdict(funnel) == "test wins (P(best) 1.000, significant)"
    assert f"**Verdict:** {verdict(trend)}" in md
    assert "no variant is best with probability 0.9 or more" in md


def test_terminal_and_report_share_the_verdict_wording(document: dict) -> None:
    terminal = results_text([document])
    page = render_report(document, "html")
    for metric in document["metrics"]:
        assert f"{metric['metric_key']}: {verdict(metric)}" in terminal
        assert f"<strong>Verdict:</strong> {verdict(metric)}" in page


def test_html_is_one_standalone_page_with_every_variant_row(document: dict) -> None:
    funnel = document["metrics"][0]
    page = render_report(document, "html")
    parsed = parse(page)

    assert page.startswith('<!DOCTYPE html>\n<html lang="en">') and page.endswith("</html>\n")
    tags = [tag for tag, _ in parsed.tags]
    assert not {"script", "link", "iframe", "object"} & set(tags)
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in parsed.tags if t == "img")
    assert "http://" not in page and "https://" not in page
    assert expected_funnel_rows(funnel) == [r for r in parsed.rows if len(r) == 8][1:]
    trend_rows = [r for r in parsed.rows if len(r) == 7][1:]
    assert [r[0] for r in trend_rows] == ["control", "test", "slow"]
    assert trend_rows[1][:4] == ["test", "410", "334", "325.9"]
    assert "<dt>Excluded</dt><dd>multiple_variants 4, bot 7, no_flag 2</dd>" in page


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_plots_are_embedded_as_valid_pngs(document: dict, fmt: str) -> None:
    images = decoded_images(render_report(document, fmt))
    # The funnel's posterior; the trend's posterior and cumulative series.
    assert len(images) == 3
    assert all(png.startswith(PNG_SIGNATURE) and len(png) < 100_000 for png in images)


def test_the_same_document_renders_the_same_text(document: dict) -> None:
    assert render_report(document, "html") == render_report(document, "html")


def test_open_ended_windows_say_so(document: dict) -> None:
    document["window"]["open_ended"] = True
    assert "(open-ended, so far)" in render_report(document, "md")


KEY = '<script>alert("key")</script>'
METRIC = "m|x<img src=x onerror=alert(1)>"
VARIANT = "t*<b>&amp;"


@pytest.fixture
def hostile() -> dict[str, Any]:
    """Names that would become markup (a script, an image, a link, a table cell) if unescaped."""
    funnel = funnel_metric(METRIC, ["$a", "</p><p>"], {"control": [50, 5], VARIANT: [50, 9]})
    trend = trend_metric("n](http://evil)", "e</h2>", {"control": [1, 2], VARIANT: [3, 4]}, {})
    return experiment(KEY, [funnel, trend], {"control": 50, VARIANT: 50})


def test_hostile_names_are_text_in_both_formats(hostile: dict) -> None:
    page = render_report(hostile, "html")
    parsed = parse(page)
    tags = [tag for tag, _ in parsed.tags]
    assert set(tags) <= PAGE_TAGS
    assert tags.count("img") == 3
    assert "&lt;script&gt;alert(&quot;key&quot;)&lt;/script&gt;" in page
    assert "m|x&lt;img src=x onerror=alert(1)&gt;" in page
    assert [r[0] for r in parsed.rows if len(r) == 8][1:] == ["control", VARIANT]

    md = render_report(hostile, "md")
    assert not re.search(r"(?<!\\)[<>&]", md)  # every angle bracket and ampersand escaped
    assert r'# Experiment report: \<script\>alert("key")\</script\>' in md
    assert [r[0] for r in markdown_table(md, r"m\|x\<img src=x onerror=alert(1)\>")] == [
        "control",
        r"t\*\<b\>\&amp;",
    ]
    assert r"## n\](http://evil)" in md
    assert len(decoded_images(md)) == 3


def test_a_commonmark_renderer_shows_hostile_names_as_text(hostile: dict) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    md = render_report(hostile, "md")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    parsed = parse(rendered)
    allowed = {"h1", "h2", "ul", "li", "strong", "em", "p", "table", "thead", "tbody", "tr"}
    assert {tag for tag, _ in parsed.tags} <= allowed | {"th", "td", "img"}
    assert f"<h1>Experiment report: {html.escape(KEY)}</h1>" in rendered
    assert f"<h2>{html.escape(METRIC)}</h2>" in rendered
    assert "<h2>n](http://evil)</h2>" in rendered
    assert [r[0] for r in parsed.rows if len(r) == 8][1:] == ["control", VARIANT]
    assert [r[0] for r in parsed.rows if len(r) == 7][1:] == ["control", VARIANT]


def test_unknown_formats_and_metric_kinds_are_refused(document: dict) -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render_report(document, "pdf")  # type: ignore[arg-type]
    document["metrics"][0]["kind"] = "survival"
    with pytest.raises(ValueError, match="no report layout for metric kind 'survival'"):
        render_report(document, "md")


def test_the_point_lift_is_left_out_when_control_has_none() -> None:
    funnel = funnel_metric("signup", ["visit", "signup"], {"control": [200, 0], "test": [200, 10]})
    md = render_report(experiment("zero", [funnel], {"control": 200, "test": 200}), "md")
    control, test = markdown_table(md, "signup")
    low, high = funnel["variants"][1]["lift_interval"]
    assert (control[-1], test[-1]) == ("baseline", f"[{signed(low)}, {signed(high)}]")


def test_web_counters_are_a_table_in_both_formats() -> None:
    document = experiment(
        "landing",
        [
            funnel_metric(
                "conversion", ["impression", "conversion"], {"control": [10, 3], "test": [10, 4]}
            )
        ],
        {"control": 10, "test": 10},
    )
    counter = {
        "exposed": 10,
        "impressions": 1200,
        "cta_clicks": 30,
        "form_starts": 12,
        "form_submits": 6,
        "conversions": 3,
        "unique_sessions": 15,
        "conversion_value_total": 1234.5,
        "conversion_rate": 0.0025,
    }
    document["web_counters"] = {
        "control": counter,
        "test": {**counter, "impressions": 0, "conversion_rate": None},
    }
    markdown = render_report(document, "md")
    assert "## Web counters" in markdown
    assert "| control | 1,200 | 30 | 12 | 6 | 3 | 15 | 0.25% | 1,234.50 |" in markdown
    assert "| test | 0 | 30 | 12 | 6 | 3 | 15 | n/a | 1,234.50 |" in markdown
    page = render_report(document, "html")
    assert "<h2>Web counters</h2>" in page
    assert '<td class="number">1,234.50</td>' in page
    without = experiment(
        "landing",
        [
            funnel_metric(
                "conversion", ["impression", "conversion"], {"control": [10, 3], "test": [10, 4]}
            )
        ],
        {"control": 10, "test": 10},
    )
    assert "Web counters" not in render_report({**without, "web_counters": {}}, "md")
