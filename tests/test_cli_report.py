"""`exp-pipeline report`: the analyst report of a materialised experiment, from the CLI.

Runs the real graph (`analyze` on a home of its own), then renders the stored document,
so the report is tested on what the pipeline writes to the warehouse.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result

from exp_pipeline.report import render_report
from tests.test_cli import REFERENCE_CATALOG, run


def assert_one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line == f"Error: {expected}"


def write_events(path: Path) -> Path:
    """Control: 2 subjects, both convert; test: 3 subjects, 1 converts, over two days."""
    rows = []
    for who, variant, day, converts in [
        ("c1", "control", "2020-01-02", True),
        ("c2", "control", "2020-01-03", True),
        ("t1", "test", "2020-01-02", True),
        ("t2", "test", "2020-01-03", False),
        ("t3", "test", "2020-01-03", False),
    ]:
        flag = {"$feature/a-b-test": variant}
        rows.append(
            {
                "event": "$pageview",
                "distinct_id": who,
                "timestamp": f"{day}T10:00:00Z",
                "properties": flag,
            }
        )
        if converts:
            rows.append(
                {
                    "event": "$pageleave",
                    "distinct_id": who,
                    "timestamp": f"{day}T10:05:00Z",
                    "properties": flag,
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_report_renders_the_stored_results_in_both_formats(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = tmp_path / "experiments.yaml"
    catalog.write_text(REFERENCE_CATALOG, encoding="utf-8")
    results = tmp_path / "results.json"
    analyzed = run(
        home,
        *("analyze", "--events", str(write_events(tmp_path / "events.jsonl"))),
        *("--experiments", str(catalog), "--output", str(results)),
    )
    assert analyzed.exit_code == 0, analyzed.output
    (document,) = json.loads(results.read_text(encoding="utf-8"))["experiments"]

    output = tmp_path / "a.html"
    result = run(home, "report", "a-b-test", "--format", "html", "--output", str(output))

    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote {output}\n"
    page = output.read_text(encoding="utf-8")
    assert page == render_report(document, "html")
    assert "<h1>Experiment report: a-b-test</h1>" in page
    assert '<th scope="row">test</th><td class="number">3</td>' in page
    assert "not enough exposure yet" in page
    # Both metrics: posterior density and cumulative daily series.
    assert page.count('<img alt="') == 4

    monkeypatch.chdir(tmp_path)
    default = run(home, "report", "a-b-test", "--format", "md")
    assert default.stdout == "wrote a-b-test-report.md\n"
    assert (tmp_path / "a-b-test-report.md").read_text(encoding="utf-8") == render_report(
        document, "md"
    )
    assert_one_line_error(
        run(home, "report", "nope"),
        "no results for experiment 'nope' (run exp-pipeline materialize)",
    )


def test_report_before_any_materialisation_is_one_line(home: Path) -> None:
    assert_one_line_error(
        run(home, "report", "a-b-test", "--format", "md"),
        "no results for experiment 'a-b-test' (run exp-pipeline materialize)",
    )
    assert not (home / "warehouse.duckdb").exists()
