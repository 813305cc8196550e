"""The `exp-pipeline` command line.

Errors a user can cause exit non-zero with one line on stderr, never a traceback (set
EXP_PIPELINE_DEBUG=1 to see one). Dagster is imported only by the commands that
materialise the graph, so the rest of the CLI stays as light as the core library.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb

from exp_pipeline.analysis.results import read_result_documents
from exp_pipeline.catalog import load_catalog
from exp_pipeline.control.db import ControlDatabase
from exp_pipeline.control.global_settings import all_settings, parse_value, set_setting
from exp_pipeline.control.lifecycle import get_live_experiment, soft_delete, transition
from exp_pipeline.control.queries import describe, live_experiments
from exp_pipeline.control.review import approve, submit
from exp_pipeline.control.sync import sync_catalog
from exp_pipeline.errors import ExpPipelineError, FlagError
from exp_pipeline.flags import (
    build_snapshot,
    decide,
    pseudonym_key,
    pseudonymous_label,
    write_snapshot,
)
from exp_pipeline.flags.decide import DEFAULT_SUBJECT_TYPE
from exp_pipeline.guardrails.check import check_all_running_experiments
from exp_pipeline.reporting import results_text
from exp_pipeline.settings import CONFIG_ENV, HOME_ENV, PROJECT_ROOT, PipelineSettings
from exp_pipeline.warehouse.connection import open_warehouse
from exp_pipeline.warehouse.loader import LoadReport, discover, load_files

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """Turn expected failures into `error: ...` on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ExpPipelineError as exc:
            raise click.ClickException(str(exc)) from None
        except duckdb.IOException as exc:
            message = str(exc).splitlines()[0]
            raise click.ClickException(
                f"the warehouse is not available: {message} (is another process writing it?)"
            ) from None
        except Exception as exc:
            if os.environ.get("EXP_PIPELINE_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                " (set EXP_PIPELINE_DEBUG=1 for the traceback)"
            ) from None

    return wrapper  # type: ignore[return-value]


def _settings(ctx: click.Context) -> PipelineSettings:
    return ctx.obj["settings_factory"]()


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Pipeline settings file (default config/pipeline.yaml or $EXP_PIPELINE_CONFIG).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="Pipeline home for the stores (default $EXP_PIPELINE_HOME or ./.exp_pipeline).",
)
@click.version_option(package_name="exp-pipeline")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, home: str | None) -> None:
    """Warehouse-native experimentation analytics: events, experiments, results, guardrails."""
    ctx.ensure_object(dict)
    ctx.obj["settings_factory"] = lambda: PipelineSettings.load(config_path, home)


# --- experiments -------------------------------------------------------------------------


@cli.group()
def experiments() -> None:
    """Experiment catalog and lifecycle in the control database."""


@experiments.command("sync")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--prune", is_flag=True, help="Soft-delete experiments that are not in the file.")
@click.option("--json", "as_json", is_flag=True, help="Print the changes as JSON.")
@click.pass_context
@_one_line_errors
def experiments_sync(ctx: click.Context, path: str, prune: bool, as_json: bool) -> None:
    """Validate the catalog at PATH and upsert it into the control database."""
    catalog = load_catalog(path)
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        report = sync_catalog(session, catalog, prune=prune)
    if as_json:
        _echo_json(report.as_dict())
    else:
        for line in report.lines():
            click.echo(line)


@experiments.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the experiments as JSON.")
@click.pass_context
@_one_line_errors
def experiments_list(ctx: click.Context, as_json: bool) -> None:
    """List experiments: key, name, status, window, variants, outcome."""
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        rows = [describe(e) for e in live_experiments(session)]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no experiments (run `exp-pipeline experiments sync config/experiments.yaml`)")
        return
    from tabulate import tabulate

    table = [
        [
            r["key"],
            r["name"],
            r["status"],
            f"{r['window']['start'] or '-'} .. {r['window']['end'] or 'open'}",
            ", ".join(f"{v['key']} {v['rollout_percentage']:g}%" for v in r["variants"]),
            "-"
            if r["outcome"] is None
            else f"{r['outcome']['outcome']} ({r['outcome']['winner']})",
        ]
        for r in rows
    ]
    click.echo(
        tabulate(table, headers=["key", "name", "status", "window (UTC)", "variants", "outcome"])
    )


@experiments.command("delete")
@click.argument("key")
@click.option("--by", "actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@click.pass_context
@_one_line_errors
def experiments_delete(ctx: click.Context, key: str, actor: str) -> None:
    """Soft-delete experiment KEY; its feature flag key becomes free for reuse."""
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        soft_delete(session, get_live_experiment(session, key), actor=actor)
    click.echo(f"deleted {key}")


Apply = Callable[[Any, Any, str, str], None]


def _lifecycle_command(action: str, summary: str, apply: Apply | None = None) -> None:
    """Register `experiments <action> KEY`: a person's audited lifecycle change.

    `apply(session, experiment, actor, reason)` does the change; by default it is the
    plain lifecycle transition named `action`.
    """

    @experiments.command(action, help=summary)
    @click.argument("key")
    @click.option("--reason", default="", help="Why: recorded in the decision log.")
    @click.option(
        "--by", "actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER"
    )
    @click.pass_context
    @_one_line_errors
    def command(ctx: click.Context, key: str, reason: str, actor: str) -> None:
        db = ControlDatabase(_settings(ctx).control_db_url)
        with db.session() as session:
            experiment = get_live_experiment(session, key)
            if apply is None:
                transition(session, experiment, action, actor=actor, reason=reason)
            else:
                apply(session, experiment, actor, reason)
            status = experiment.status
        click.echo(f"{key}: {status}")


_lifecycle_command(
    "submit",
    "Submit draft experiment KEY for launch review (the submitter owns it).",
    lambda session, experiment, actor, reason: submit(
        session, experiment, actor=actor, reason=reason
    ),
)
_lifecycle_command(
    "approve",
    "Approve experiment KEY in review (never its owner; see the approvers setting).",
    lambda session, experiment, actor, reason: approve(
        session, experiment, approver=actor, reason=reason
    ),
)
_lifecycle_command("start", "Start experiment KEY (approved, or a draft when no review).")
_lifecycle_command("pause", "Pause running experiment KEY (its flag stops assigning).")
_lifecycle_command(
    "resume", "Resume paused experiment KEY: only a person does this, never a guardrail."
)


@experiments.command("complete")
@click.argument("key")
@click.option("--winner", help="The variant served to everyone from now on.")
@click.option(
    "--outcome",
    type=click.Choice(["shipped", "rollback", "inconclusive"]),
    default="shipped",
    show_default=True,
)
@click.option("--reason", default="", help="Why: recorded in the decision log.")
@click.option("--by", "actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@click.pass_context
@_one_line_errors
def experiments_complete(
    ctx: click.Context, key: str, winner: str | None, outcome: str, reason: str, actor: str
) -> None:
    """Complete experiment KEY with an outcome; the winner is served to everyone."""
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        experiment = get_live_experiment(session, key)
        transition(
            session,
            experiment,
            "complete",
            actor=actor,
            reason=reason,
            outcome=outcome,
            winner=winner,
        )
    click.echo(f"{key}: completed ({outcome}, winner {winner or 'none'})")


@cli.group()
def guardrails() -> None:
    """Guardrail checks of running experiments."""


@guardrails.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@_one_line_errors
def guardrails_check(ctx: click.Context, as_json: bool) -> None:
    """Evaluate every running experiment's guardrails once and write the decisions."""
    settings = _settings(ctx)
    db = ControlDatabase(settings.control_db_url)
    with open_warehouse(settings.warehouse_path) as con:
        report = check_all_running_experiments(con, db, datetime.now(UTC))
    if as_json:
        _echo_json(report)
        return
    for d in report["decisions"]:
        click.echo(
            f"{d['experiment_key']}: {d['outcome']}" + (f" ({d['reason']})" if d["reason"] else "")
        )
    click.echo(f"checked {report['checked']}, triggered {report['triggered']}")


# --- events ------------------------------------------------------------------------------


@cli.group()
def events() -> None:
    """Raw events in the DuckDB warehouse."""


def _print_load(report: LoadReport, as_json: bool) -> None:
    summary = report.summary()
    if as_json:
        summary["files"] = [vars(f) for f in report.files]
        _echo_json(summary)
        return
    for f in report.files:
        quarantined = sum(f.quarantined.values())
        click.echo(
            f"{f.status:<15} {f.path}: {f.rows_loaded} loaded, {f.duplicates} duplicates, "
            f"{quarantined} quarantined"
        )
        if f.error:
            click.echo(f"    {f.error}", err=True)
    reasons = ", ".join(f"{k} {v}" for k, v in summary["quarantined"].items()) or "none"
    click.echo(
        f"{summary['rows_loaded']} events loaded, {summary['duplicates_skipped']} duplicates "
        f"skipped, {summary['quarantined_total']} quarantined ({reasons}), "
        f"{summary['bot_events']} bot and {summary['dnt_events']} Do-Not-Track events flagged"
    )


@events.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the load report as JSON.")
@click.pass_context
@_one_line_errors
def events_load(ctx: click.Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Load landing files (JSONL, CSV, Parquet; files or folders) into the warehouse."""
    settings = _settings(ctx)
    with open_warehouse(settings.warehouse_path) as con:
        report = load_files(con, paths, bot_pattern=settings.bot_user_agent_pattern)
    _print_load(report, as_json)


# --- settings ----------------------------------------------------------------------------


@cli.group("settings")
def settings_group() -> None:
    """Global settings in the control database (e.g. the experiments_enabled kill switch)."""


@settings_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--by", "actor", default=lambda: os.environ.get("USER", "cli"), show_default="$USER")
@click.pass_context
@_one_line_errors
def settings_set(ctx: click.Context, key: str, value: str, actor: str) -> None:
    """Set KEY to VALUE, e.g. `settings set experiments_enabled false` (logged with --by)."""
    parsed = parse_value(key, value)
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        set_setting(session, key, parsed, actor=actor)
    click.echo(f"{key} = {json.dumps(parsed)}")


@settings_group.command("list")
@click.pass_context
@_one_line_errors
def settings_list(ctx: click.Context) -> None:
    """Print every global setting with its current value."""
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        for key, value in all_settings(session).items():
            click.echo(f"{key} = {json.dumps(value)}")


# --- flags -------------------------------------------------------------------------------


@cli.command("decide")
@click.argument("flag")
@click.argument("subject")
@click.option(
    "--attributes",
    default="{}",
    help="Subject attributes as a JSON object, e.g. '{\"$dnt\": true}'.",
)
@click.option(
    "--subject-type",
    default=DEFAULT_SUBJECT_TYPE,
    show_default=True,
    help="What kind of id SUBJECT is: user, cookie, device or a group type; must match the flag.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
@click.pass_context
@_one_line_errors
def decide_command(
    ctx: click.Context,
    flag: str,
    subject: str,
    attributes: str,
    subject_type: str,
    as_json: bool,
) -> None:
    """Which variant of FLAG SUBJECT gets now, and why, as an application would decide it."""
    try:
        parsed = json.loads(attributes)
    except json.JSONDecodeError as exc:
        raise FlagError(f"--attributes is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise FlagError("--attributes must be a JSON object")
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        snapshot = build_snapshot(session)
    decision = decide(snapshot, flag, subject, parsed, subject_type)
    if as_json:
        _echo_json(decision.as_dict())
        return
    served = decision.variant if decision.variant is not None else "no variant"
    tail = f", decision {decision.decision_id}" if decision.decision_id else ""
    click.echo(f"{flag}: {served} for {subject} ({decision.reason}{tail})")


@cli.group()
def flags() -> None:
    """The flags snapshot that applications load to decide flags locally."""


@flags.command("export")
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False), help="Write the snapshot here."
)
@click.pass_context
@_one_line_errors
def flags_export(ctx: click.Context, output: str) -> None:
    """Write the flags snapshot (JSON) built from the control database to OUTPUT."""
    db = ControlDatabase(_settings(ctx).control_db_url)
    with db.session() as session:
        snapshot = build_snapshot(session)
    path = write_snapshot(snapshot, output)
    count = len(snapshot["flags"])
    click.echo(
        f"wrote {path} (version {snapshot['version']}, {count} flag{'' if count == 1 else 's'})"
    )


@flags.command("label")
@click.argument("subjects", nargs=-1, required=True)
@_one_line_errors
def flags_label(subjects: tuple[str, ...]) -> None:
    """Print the pseudonymous label (HMAC-SHA256, key from $EXP_PIPELINE_PSEUDONYM_KEY) of
    each SUBJECT, one `subject<TAB>label` line each, for tracking events without raw ids."""
    key = pseudonym_key()
    for subject in subjects:
        click.echo(f"{subject}\t{pseudonymous_label(subject, key)}")


# --- the graph ---------------------------------------------------------------------------


def _landing_days(landing_dir: Path) -> list[str]:
    if not landing_dir.is_dir():
        return []
    return sorted(p.name for p in landing_dir.iterdir() if p.is_dir() and _is_day(p.name))


def _is_day(name: str) -> bool:
    try:
        datetime.strptime(name, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _run_graph(settings: PipelineSettings, log_level: str) -> list[str]:
    """Materialise the whole graph over every landing day present, then tick the guardrail
    sensor once (as the daemon would) and republish the flags snapshot if it decided
    anything; return the days."""
    # Dagster only here: the graph's runner. Its beta-API notice is for developers.
    warnings.filterwarnings("ignore", message=r"Parameter `backfill_policy`")
    from definitions import materialize_graph, publish_flags_snapshot, tick_guardrail_sensor

    days = _landing_days(settings.landing_dir)
    first, today = settings.partitions_start_date.isoformat(), datetime.now(UTC).date().isoformat()
    outside = [d for d in days if not first <= d < today]
    if outside:
        click.echo(
            f"skipping landing day(s) {', '.join(outside)}: raw_events has daily partitions "
            f"from {first} to yesterday (load them with `exp-pipeline events load`)",
            err=True,
        )
    days = [d for d in days if d not in outside]
    materialize_graph(settings, days, log_level=log_level)
    tick = tick_guardrail_sensor(settings)
    if json.loads(tick.cursor or "{}").get("acted_on"):
        publish_flags_snapshot(settings)  # as flags_snapshot_sensor would, after a decision
    return days


@cli.command("materialize")
@click.pass_context
@_one_line_errors
def materialize(ctx: click.Context) -> None:
    """Materialise the whole asset graph in-process over every landing day present."""
    settings = _settings(ctx)
    days = _run_graph(settings, log_level="INFO")
    click.echo(f"materialised the graph over {len(days)} landing day(s) in {settings.home}")


@cli.command("demo")
@click.option("--events", "n_events", default=200_000, show_default=True, help="About how many.")
@click.option("--seed", default=7, show_default=True)
@click.pass_context
@_one_line_errors
def demo(ctx: click.Context, n_events: int, seed: int) -> None:
    """Generate demo data and materialise the whole graph on the embedded stores.

    The demo resets the warehouse, control database and landing folder of the home
    (default ./.exp_pipeline) so that its figures are those of this run; Dagster's run
    history is kept.
    """
    from exp_pipeline.demo.generator import generate_demo_data

    settings = _settings(ctx)
    started = datetime.now(UTC)
    _reset_demo_home(settings)
    catalog = load_catalog(settings.catalog_path)
    generated = generate_demo_data(settings.landing_dir, catalog, n_events=n_events, seed=seed)
    click.echo(f"generated {generated.events_written} demo events in {settings.landing_dir}")
    days = _run_graph(settings, log_level="WARNING")
    _print_demo_summary(settings, days, (datetime.now(UTC) - started).total_seconds())


def _reset_demo_home(settings: PipelineSettings) -> None:
    if settings.control_db_url != f"sqlite:///{settings.home / 'control.db'}":
        raise ExpPipelineError(
            "the demo runs on the embedded stores only: unset EXP_PIPELINE_CONTROL_DB_URL"
        )
    for path in (settings.warehouse_path, settings.home / "control.db"):
        for suffix in ("", ".wal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(settings.landing_dir, ignore_errors=True)


def _print_demo_summary(settings: PipelineSettings, days: list[str], seconds: float) -> None:
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        events_total, bots, dnt = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_bot), count(*) FILTER (WHERE is_dnt) "
            "FROM events"
        ).fetchone()
        quarantined = con.execute(
            "SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY reason"
        ).fetchall()
        duplicates = con.execute("SELECT coalesce(sum(duplicates), 0) FROM loaded_files").fetchone()
        per_flag = con.execute(
            "SELECT flag_key, count(DISTINCT distinct_id) FROM flag_assignments "
            "WHERE NOT is_bot AND NOT is_dnt GROUP BY flag_key ORDER BY flag_key"
        ).fetchall()
    db = ControlDatabase(settings.control_db_url)
    with db.session() as session:
        experiments_rows = [describe(e) for e in live_experiments(session)]
    click.echo("")
    click.echo(f"Demo finished in {seconds:.0f} s. Home: {settings.home}")
    click.echo(
        f"  landing days: {len(days)} ({days[0]} .. {days[-1]})" if days else "  no landing days"
    )
    click.echo(
        f"  events: {events_total} loaded ({bots} bot, {dnt} Do-Not-Track, excluded from "
        f"analysis), {duplicates[0]} duplicates skipped"
    )
    click.echo("  quarantined: " + (", ".join(f"{r} {n}" for r, n in quarantined) or "none"))
    click.echo("  subjects with a flag signal: " + ", ".join(f"{k} {n}" for k, n in per_flag))
    click.echo(
        "  experiments: " + ", ".join(f"{e['key']} ({e['status']})" for e in experiments_rows)
    )
    click.echo("")
    click.echo(results_text(_result_documents(settings)))
    click.echo("")
    click.echo("Open the Dagster UI on this home with: make ui   (then http://127.0.0.1:3000)")


def _result_documents(settings: PipelineSettings, keys: list[str] | None = None) -> list[dict]:
    """Stored results documents (all, or those of `keys`), read from the warehouse."""
    if not settings.warehouse_path.exists():
        return []  # nothing materialised in this home yet: no results, not a warehouse error
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        has_results = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name = 'experiment_result_documents'"
        ).fetchone()[0]
        documents = read_result_documents(con) if has_results else []
    return [d for d in documents if keys is None or d["experiment_key"] in keys]


@cli.command("results")
@click.option("--json", "as_json", is_flag=True, help="Print the results documents as JSON.")
@click.pass_context
@_one_line_errors
def results(ctx: click.Context, as_json: bool) -> None:
    """Print the latest results of every experiment, as materialised in the warehouse."""
    documents = _result_documents(_settings(ctx))
    if as_json:
        _echo_json({"experiments": documents})
    elif documents:
        click.echo(results_text(documents))
    else:
        click.echo("no results yet (run `exp-pipeline materialize`)")


@cli.command("report")
@click.argument("key")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="A standalone HTML page or Markdown; plots are embedded in both.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the report here (default <KEY>-report.<format> in the current folder).",
)
@click.pass_context
@_one_line_errors
def report(ctx: click.Context, key: str, fmt: str, output: str | None) -> None:
    """Write experiment KEY's report: its tables, verdicts and plots, as materialised."""
    # matplotlib only here, so the other commands start as fast as before.
    from exp_pipeline.report import render_report

    documents = _result_documents(_settings(ctx), [key])
    if not documents:
        raise ExpPipelineError(f"no results for experiment '{key}' (run exp-pipeline materialize)")
    path = Path(output or f"{key}-report.{fmt}")
    path.write_text(render_report(documents[0], fmt), encoding="utf-8")
    click.echo(f"wrote {path}")


@cli.command("analyze")
@click.option(
    "--events",
    "events_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True),
    help="Landing file or folder (JSONL, CSV, Parquet); repeatable.",
)
@click.option(
    "--experiments",
    "catalog_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Experiment catalog (YAML).",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Write the results JSON here.")
@click.pass_context
@_one_line_errors
def analyze(
    ctx: click.Context, events_paths: tuple[str, ...], catalog_path: str, output: str | None
) -> None:
    """Run the whole asset graph on EVENTS and EXPERIMENTS and write the results as JSON.

    Uses a fresh temporary home unless --home or $EXP_PIPELINE_HOME names one. The events
    are linked into the landing folder of the first raw_events partition, so they load
    through the same assets as scheduled runs.
    """
    catalog = load_catalog(catalog_path)
    explicit_home = ctx.find_root().params.get("home") or os.environ.get(HOME_ENV)
    with tempfile.TemporaryDirectory(prefix="exp-pipeline-") as scratch:
        settings = _settings(ctx)
        if not explicit_home:
            settings = PipelineSettings.load(ctx.find_root().params.get("config_path"), scratch)
        settings = settings.model_copy(update={"catalog_path": Path(catalog_path).resolve()})
        _link_landing_files(settings, events_paths)
        _run_graph(settings, log_level="WARNING")
        documents = _result_documents(settings, [e.key for e in catalog.experiments])
    payload = {"experiments": documents}
    if output:
        Path(output).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {output}")
    click.echo(results_text(documents))


def _link_landing_files(settings: PipelineSettings, paths: tuple[str, ...]) -> None:
    """Link every landing file under `paths` into the first partition's landing folder."""
    day_dir = settings.landing_dir / settings.partitions_start_date.isoformat()
    day_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(discover([Path(p) for p in paths])):
        target = day_dir / f"analyze-{i:05d}-{path.name}"
        if not target.exists():
            target.symlink_to(path.resolve())


@cli.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3000, show_default=True)
@click.pass_context
@_one_line_errors
def ui(ctx: click.Context, host: str, port: int) -> None:
    """Start the Dagster UI (`dagster dev`) on this home's Dagster instance."""
    settings = _settings(ctx)
    dagster_home = settings.prepare_dagster_home()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        HOME_ENV: str(settings.home),
    }
    if ctx.find_root().params.get("config_path"):
        env[CONFIG_ENV] = str(Path(ctx.find_root().params["config_path"]).resolve())
    dagster = Path(sys.executable).parent / "dagster"
    argv = [str(dagster), "dev", "-w", "workspace.yaml", "-h", host, "-p", str(port)]
    click.echo(f"Dagster home {dagster_home}; UI on http://{host}:{port}")
    os.chdir(PROJECT_ROOT)
    os.execve(argv[0], argv, env)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="exp-pipeline")
