"""The results tables of `benchmarks/README.md`, rebuilt from `results/run_*.json`.

Only the text between the two marker comments is replaced, so the prose around the
tables (findings, profiles, fixes) is written by hand and kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

START = "<!-- run-results:start (written by benchmarks/run.py) -->"
END = "<!-- run-results:end -->"


def _seconds(stage: dict[str, Any] | None, key: str = "seconds") -> str:
    if stage is None:
        return "–"
    ratio = stage.get("ratio_to_scan")
    return f"{stage[key]:.1f} s" + (f" ({ratio:g}×)" if ratio is not None else "")


def _label(run: dict[str, Any]) -> str:
    p = run["parameters"]
    events = p["events"]
    size = f"{events // 1_000_000}M" if events % 1_000_000 == 0 else f"{events:,}"
    limit = f", DuckDB limit {p['memory_limit']}" if p["memory_limit"] else ""
    return f"{size} {p['format']}{limit}"


def _row(run: dict[str, Any]) -> str:
    s = run["stages"]
    exposures = s["exposures"]
    exposure_only = (
        f"{exposures['exposure_seconds']:.1f} s ({exposures['exposure_build_ratio_to_scan']:g}×)"
    )
    pandas = s.get("pandas")
    pandas_cell = "–"
    if pandas is not None:
        pandas_cell = (
            f"{pandas['seconds']:.1f} s ({pandas['ratio_to_scan']:g}×; "
            f"{pandas['seconds'] / exposures['exposure_seconds']:.1f}× SQL)"
        )
    e2e = run["end_to_end"]
    same = run.get("same_results_as_unconstrained")
    checks = (
        "all pass"
        if all(run["checks"].values())
        else "FAIL: " + ", ".join(k for k, ok in run["checks"].items() if not ok)
    )
    if same is not None:
        checks += (
            "; identical to unconstrained"
            if same["identical"]
            else ("; DIFFERS from unconstrained: " + ", ".join(same["differing"]))
        )
    cells = [
        _label(run),
        f"{s['scan']['seconds']:.1f} s",
        _seconds(s["load"]),
        _seconds(exposures),
        exposure_only,
        _seconds(s["results"]),
        f"{s['guardrails']['seconds']:.1f} s",
        f"{e2e['seconds']:.0f} s ({e2e['ratio_to_scan']:g}×; CPU {e2e['cpu_seconds']:.0f} s)",
        f"{e2e['peak_rss_mib'] / 1024:.2f} GiB",
        pandas_cell,
        f"{s['pbest']['beta_probability_best_ms']:.1f} ms",
        checks,
    ]
    return "| " + " | ".join(cells) + " |"


def _memory_row(run: dict[str, Any]) -> str:
    s = run["stages"]
    names = ("scan", "catalog", "load", "exposures", "results", "guardrails", "pandas")
    cells = [_label(run)] + [f"{s[n]['peak_rss_mib']:,} MiB" if n in s else "–" for n in names]
    spilled = [s[n]["peak_spill_mib"] for n in names if "peak_spill_mib" in s.get(n, {})]
    cells.append(f"{max(spilled):,} MiB" if spilled else "–")
    load = sorted({v for n in names if n in s for v in s[n]["load_average"]})
    cells.append(f"{load[0]:g}–{load[-1]:g}")
    return "| " + " | ".join(cells) + " |"


def render(runs: list[dict[str, Any]]) -> str:
    runs = sorted(
        runs,
        key=lambda r: (
            r["parameters"]["events"],
            r["parameters"]["format"] != "parquet",
            r["parameters"]["memory_limit"] or "",
        ),
    )
    machine = runs[0]["machine"] if runs else {}
    lines = [
        START,
        "",
        f"Machine: {machine.get('cpus')} cores, {machine.get('memory_gib')} GiB, "
        f"Python {machine.get('python')}; duckdb "
        f"{runs[0]['libraries']['duckdb'] if runs else '?'}. Wall time of the measured part of "
        "each stage, and in brackets its ratio to the bare scan of the same landing files.",
        "",
        "| run | bare scan | load | exposures + conversions | exposure build | metrics + "
        "results | guardrails (500) | end to end | peak memory | pandas exposure build | "
        "P(best), 10 variants | checks |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        *(_row(r) for r in runs),
        "",
        "Peak resident memory of each stage's process, the most DuckDB had spilled to its "
        "temp directory at once (runs with a memory limit), and the 1-minute load average of "
        "the machine around the stages (2 cores: above 2 means other work was queueing):",
        "",
        "| run | scan | catalog | load | exposures | results | guardrails | pandas | spilled "
        "| load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_memory_row(r) for r in runs),
        "",
        END,
    ]
    return "\n".join(lines)


def update(readme: Path, result_files: list[Path]) -> None:
    """Replace the marked section of `readme` (append it when absent)."""
    runs = [json.loads(p.read_text()) for p in result_files]
    table = render(runs)
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + table + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + table + "\n"
    readme.write_text(text, encoding="utf-8")
