"""Benchmark events: N events across the 20 analysed experiments, as landing files.

Writes `<out>/<format>/<YYYY-MM-DD>/events-<part>.<format>` (Parquet always; JSON Lines
on request, with the same events) in the event contract the loader reads, and
`<out>/manifest.json` with what was planted, so a run can check the loader counted
exactly that. Everything happens in DuckDB SQL, one UTC day at a time: visits and their
events are drawn from a counter-based generator (`hash(hash(seed, day, visit, position,
tag))` scaled to [0, 1)), so the same seed and DuckDB version write the same files, in any
order, on any number of threads, and memory is bounded by one day's compact event table
(it spills to `--out` when it must), not by N.

What the files hold, so every code path is paid for at scale:

- subjects drawn from a shared pool, so most come back on several days (first touch
  across days, out-of-window signals before late starts and after early ends);
- exposure signals both ways: a `$feature_flag_called` event with `$feature_flag` /
  `$feature_flag_response` first in 60% of visits, and `$feature/<flag>` on every event;
  10% of subjects also carry an unrelated `$feature/dark-mode` flag;
- funnel steps ($pageview, signup, purchase), clicks, app exposures and errors, with
  real lifts on even experiments and a 4x error rate on treatments of every fifth one
  (its guardrail fires); numeric `amount` (log-normal) and `duration_ms` properties;
- 1% bot subjects (bot user agents), 1.5% Do-Not-Track, 0.5% seen in two variants,
  0.3% in a variant the catalog does not know, 2% active without any flag, 0.2% QA
  overrides (`$feature_flag_forced` on their flag evaluations);
- timestamps as `Z` (80%), naive `T`, naive space-separated and `+hh:mm` offsets;
  10% of events without `event_id` (deduplicated on their content hash);
- 0.5% of events replayed in the day's last file (duplicates, across files when a day
  has several), and corrupted copies (0.02% each): no subject, no event name, an
  unparseable timestamp, properties that are not an object, and in JSON Lines only a
  truncated line.

    python benchmarks/generate.py --events 1M --out /tmp/exp-bench/1M [--jsonl] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import workload

from exp_pipeline.demo.generator import BOT_USER_AGENTS, HUMAN_USER_AGENTS

# Rows per landing file: a day with more valid events is split into several files.
PART_ROWS = 1_000_000
# Events per visit are 2 + floor(Exponential(mean 6)), capped at 200.
VISIT_EXP_MEAN = 6.0
MAX_EVENTS_PER_VISIT = 200
# A subject visits about this many times over the 14 days (the pool is visits / this).
VISITS_PER_SUBJECT = 2.0

EVENTS = ("$feature_flag_called", "$pageview", "signup", "purchase", "click")
EVENTS += ("app_exposure", "app_error")
# Subject kinds: cumulative shares of the subject pool.
SUBJECT_KINDS = (("bot", 0.01), ("dnt", 0.025), ("mixed", 0.03), ("unknown", 0.033))
SUBJECT_KINDS += (("no_flag", 0.053), ("forced", 0.055))
UNKNOWN_VARIANT = "legacy"
# Row copies: 0 the event, 1 its replay, 2.. a corrupted copy (its loader reason).
COPIES = {
    2: "missing_distinct_id",
    3: "invalid_timestamp",
    4: "invalid_properties",
    5: "missing_event",
    6: "malformed_json",
}
CORRUPT_SHARE = 0.0002  # per corruption kind
DUPLICATE_SHARE = 0.005
NO_EVENT_ID_SHARE = 0.1

# DuckDB combines the hashes of several arguments with XOR, so two draws differing only in
# their tag would be correlated; hashing the combined hash again decorrelates them.
_MACROS = """
CREATE OR REPLACE TEMP MACRO unit(a, b, c, d, e) AS
    (hash(hash(a, b, c, d, e)) >> 11)::DOUBLE / 9007199254740992.0;
CREATE OR REPLACE TEMP MACRO uuid_of(t) AS md5_number(t)::UUID::VARCHAR;
"""

# One day's visits. Subject-level draws use day -1 and position -1, so a subject keeps
# its experiment, variant and kind on every visit. Parameters: $seed, $day, $visits,
# $pool, $humans.
_VISITS_SQL = """
CREATE OR REPLACE TEMP TABLE visits AS
WITH drawn AS (
    SELECT s,
           floor(unit($seed, $day, s, -1, 1) * $pool)::BIGINT AS g,
           2 + least(floor(-ln(1 - unit($seed, $day, s, -1, 2)) * {exp_mean}),
                     {max_events} - 2)::INTEGER AS k,
           unit($seed, $day, s, -1, 3) < 0.6 AS calls_flag,
           floor(unit($seed, $day, s, -1, 4) * 0.9 * 86400000)::BIGINT AS t0,
           30000 + floor(unit($seed, $day, s, -1, 5) * 270000)::BIGINT AS gap
    FROM range($visits) r(s)
), subjects AS (
    SELECT *,
           floor(unit($seed, -1, g, -1, 1) * {analysed})::INTEGER AS x,
           unit($seed, -1, g, -1, 2) * 100 AS uv,
           unit($seed, -1, g, -1, 3) AS uk,
           floor(unit($seed, -1, g, -1, 4) * $humans)::INTEGER AS ua,
           unit($seed, -1, g, -1, 5) < 0.1 AS dark
    FROM drawn
)
SELECT s.s, s.g, s.k, s.calls_flag, s.t0, s.gap, s.x, s.ua, s.dark, v.vi, v.nv,
       CASE {kind_cases} ELSE 'normal' END AS kind,
       uuid_of($seed || ':subject:' || s.g) AS distinct_id,
       uuid_of($seed || ':session:' || $day || ':' || s.s) AS session_id
FROM subjects s JOIN bench_variants v ON v.x = s.x AND s.uv >= v.lo AND s.uv < v.hi
"""

# One day's events as compact codes, with their replays and corrupted copies.
# Parameters: $seed, $day, $day_ms, $parts.
_EVENTS_SQL = """
CREATE OR REPLACE TEMP TABLE day_events AS
WITH expanded AS (
    SELECT s, k, calls_flag, t0, gap, x, vi, nv, kind, unnest(range(k)) AS p FROM visits
), drawn AS (
    SELECT *,
           CASE WHEN x % 2 = 0 THEN 1 + 0.08 * vi ELSE 1 END AS lift,
           CASE WHEN x % 5 = 0 AND vi > 0 THEN 4 ELSE 1 END AS harm,
           unit($seed, $day, s, p, 1) AS ue,
           $day_ms + t0 + p * gap + floor(unit($seed, $day, s, p, 2) * gap / 2)::BIGINT AS t_ms,
           unit($seed, $day, s, p, 3) AS uf,
           unit($seed, $day, s, p, 4) >= {no_id} AS has_id,
           unit($seed, $day, s, p, 5) < {dup} AS dup,
           unit($seed, $day, s, p, 6) AS ub,
           unit($seed, $day, s, p, 7) AS um1,
           unit($seed, $day, s, p, 8) AS um2
    FROM expanded
), coded AS (
    SELECT s, p, t_ms, has_id, dup,
           CASE WHEN p = 0 AND calls_flag AND kind <> 'no_flag' THEN 0
                WHEN p = 0 THEN 1
                WHEN ue < 0.004 * harm THEN 6
                WHEN ue < 0.004 * harm + 0.08 * lift THEN 2
                WHEN ue < 0.004 * harm + 0.11 * lift THEN 3
                WHEN ue < 0.004 * harm + 0.11 * lift + 0.15 THEN 4
                WHEN ue < 0.004 * harm + 0.11 * lift + 0.30 THEN 5
                ELSE 1 END AS code,
           CASE WHEN kind = 'unknown' THEN -1
                WHEN kind = 'mixed' AND p = k - 1 THEN (vi + 1) % nv
                ELSE vi END AS label,
           CASE WHEN uf < 0.8 THEN 0 WHEN uf < 0.88 THEN 1 WHEN uf < 0.94 THEN 2 ELSE 3 END
               AS form,
           (floor(uf * 1000)::INTEGER % 4) AS offset_code,
           CASE WHEN ub < {corrupt} * 5 THEN 2 + floor(ub / {corrupt})::INTEGER ELSE 0 END
               AS bad,
           exp(ln(40) + 0.8 * sqrt(-2 * ln(1 - um1)) * cos(2 * pi() * um2)) AS amount,
           floor(-ln(1 - um1) * 20000)::INTEGER AS duration_ms,
           least($parts - 1, greatest(0, (t_ms - $day_ms) * $parts // 86400000))::INTEGER
               AS part
    FROM drawn
)
SELECT * EXCLUDE (bad), 0 AS copy FROM coded
UNION ALL SELECT * EXCLUDE (bad) REPLACE ($parts - 1 AS part), 1 FROM coded WHERE dup
UNION ALL SELECT * EXCLUDE (bad), bad FROM coded WHERE bad > 0
"""

# Landing rows of one file. Every string pasted here comes from the code tables above
# (flag and variant keys, event names, user agents, uuids): none needs JSON escaping.
# A view takes no parameters, so the integers {seed}, {day}, {part} are formatted in.
_ROWS_SQL = """
WITH joined AS (
    SELECT e.*, v.g, v.distinct_id, v.session_id, v.dark, v.kind, f.flag, n.name AS event_name,
           coalesce(l.variant, '{unknown}') AS variant, u.agent,
           epoch_ms(e.t_ms) AS t
    FROM day_events e
    JOIN visits v USING (s)
    JOIN bench_flags f ON f.x = v.x
    JOIN bench_events n ON n.code = e.code
    JOIN bench_agents u ON u.i = CASE WHEN v.kind = 'bot' THEN {humans} + v.ua % {bots}
                                      ELSE v.ua END
    LEFT JOIN bench_variants l ON l.x = v.x AND l.vi = e.label
    WHERE e.part = {part} AND e.copy IN ({copies})
), rendered AS (
    SELECT s, p, copy, t_ms,
           CASE WHEN copy = 5 THEN NULL ELSE event_name END AS event,
           CASE WHEN copy = 2 THEN NULL ELSE distinct_id END AS distinct_id,
           CASE WHEN copy = 3 THEN 'not-a-time'
                WHEN form = 0 THEN strftime(t, '%Y-%m-%dT%H:%M:%S.%gZ')
                WHEN form = 1 THEN strftime(t, '%Y-%m-%dT%H:%M:%S.%g')
                WHEN form = 2 THEN strftime(t, '%Y-%m-%d %H:%M:%S')
                ELSE strftime(t + to_minutes([60, -300, 330, 540][offset_code + 1]),
                              '%Y-%m-%dT%H:%M:%S.%g')
                     || ['+01:00', '-05:00', '+05:30', '+09:00'][offset_code + 1]
           END AS timestamp,
           '{{"$session_id":"' || session_id || '","$user_agent":"' || agent || '"'
               || CASE WHEN kind = 'no_flag' THEN ''
                       WHEN code = 0 THEN ',"$feature_flag":"' || flag
                            || '","$feature_flag_response":"' || variant || '"'
                            || CASE WHEN kind = 'forced' THEN ',"$feature_flag_forced":true'
                                    ELSE '' END
                       ELSE ',"$feature/' || flag || '":"' || variant || '"' END
               || CASE WHEN dark THEN ',"$feature/dark-mode":"'
                            || CASE WHEN g % 2 = 0 THEN 'on' ELSE 'off' END || '"'
                       ELSE '' END
               || CASE WHEN code = 3 THEN ',"amount":' || round(amount, 2)::DECIMAL(12, 2)
                       WHEN code = 1 THEN ',"duration_ms":' || duration_ms
                            || ',"$current_url":"https://shop.example/p/' || (s + p) % 50 || '"'
                       ELSE '' END
               || CASE WHEN kind = 'dnt' THEN ',"$dnt":1' ELSE '' END
               || ',"plan":"' || CASE WHEN g % 5 = 0 THEN 'pro' ELSE 'free' END || '"}}'
               AS props,
           CASE WHEN copy >= 2 THEN uuid_of('{seed}:bad:{day}:' || s || ':' || p)
                WHEN has_id THEN uuid_of('{seed}:event:{day}:' || s || ':' || p)
           END AS event_id
    FROM joined
)
SELECT s, p, copy, t_ms, event, distinct_id, timestamp,
       CASE WHEN copy = 4 THEN '[' || props || ']' ELSE props END AS properties, event_id
FROM rendered
"""

_JSON_LINE = """
SELECT CASE WHEN copy = 6 THEN left(line, length(line) // 2) ELSE line END
FROM (
    SELECT s, p, copy, t_ms,
           '{"event":' || coalesce('"' || event || '"', 'null')
               || coalesce(',"distinct_id":"' || distinct_id || '"', '')
               || ',"timestamp":"' || timestamp || '","properties":' || properties
               || coalesce(',"event_id":"' || event_id || '"', '') || '}' AS line
    FROM rows
)
ORDER BY t_ms, s, p, copy
"""
_LINES = "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')"


def generator_version() -> str:
    """A digest of the code that decides the files' content, so stale files are not reused."""
    here = Path(__file__).resolve().parent
    sources = b"".join((here / name).read_bytes() for name in ("generate.py", "workload.py"))
    return hashlib.sha256(sources + duckdb.__version__.encode()).hexdigest()[:16]


def parse_count(text: str) -> int:
    """'1M', '10M', '100M', '250k' or a plain integer."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def _expected_events_per_visit() -> float:
    """2 + E[floor(X)], X ~ Exponential(mean m): the sum of P(X >= j) = 1 / (e^(1/m) - 1)."""
    return 2 + 1 / math.expm1(1 / VISIT_EXP_MEAN)


def _register_tables(con: duckdb.DuckDBPyConnection) -> None:
    variants = []
    for x in range(workload.ANALYSED):
        cumulative = 0.0
        keys = workload.variant_keys(x)
        for vi, (key, share) in enumerate(zip(keys, workload.allocation(x), strict=True)):
            high = 100.0 if vi == len(keys) - 1 else cumulative + share
            variants.append((x, vi, len(keys), key, cumulative, high))
            cumulative += share
    con.execute(
        "CREATE TEMP TABLE bench_variants "
        "(x INTEGER, vi INTEGER, nv INTEGER, variant VARCHAR, lo DOUBLE, hi DOUBLE)"
    )
    con.executemany("INSERT INTO bench_variants VALUES (?, ?, ?, ?, ?, ?)", variants)
    con.execute("CREATE TEMP TABLE bench_flags (x INTEGER, flag VARCHAR)")
    con.executemany(
        "INSERT INTO bench_flags VALUES (?, ?)",
        [(x, workload.flag_key(x)) for x in range(workload.ANALYSED)],
    )
    con.execute("CREATE TEMP TABLE bench_events (code INTEGER, name VARCHAR)")
    con.executemany("INSERT INTO bench_events VALUES (?, ?)", list(enumerate(EVENTS)))
    con.execute("CREATE TEMP TABLE bench_agents (i INTEGER, agent VARCHAR)")
    con.executemany(
        "INSERT INTO bench_agents VALUES (?, ?)",
        list(enumerate(HUMAN_USER_AGENTS + BOT_USER_AGENTS)),
    )


def _kind_cases() -> str:
    return " ".join(f"WHEN uk < {share} THEN '{kind}'" for kind, share in SUBJECT_KINDS)


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _day_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """What one day planted: events, replays, corrupted copies per reason, bots, DNT."""
    row = con.execute(
        """
        SELECT count(*) FILTER (WHERE copy = 0),
               count(*) FILTER (WHERE copy = 1),
               count(*) FILTER (WHERE copy = 0 AND v.kind = 'bot'),
               count(*) FILTER (WHERE copy = 0 AND v.kind = 'dnt'),
               count(*) FILTER (WHERE copy = 0 AND e.code = 0 AND v.kind <> 'no_flag'),
               count(*) FILTER (WHERE copy = 0 AND v.kind <> 'no_flag'),
               count(*) FILTER (WHERE copy = 0 AND v.dark)
        FROM day_events e JOIN visits v USING (s)
        """
    ).fetchone()
    names = ("events", "duplicates", "bot_events", "dnt_events", "flag_called_events")
    names += ("flagged_events", "dark_mode_events")
    counts = dict(zip(names, (int(n) for n in row), strict=True))
    for copy, reason in COPIES.items():
        counts[reason] = int(
            con.execute("SELECT count(*) FROM day_events WHERE copy = ?", [copy]).fetchone()[0]
        )
    return counts


def _write_day(
    con: duckdb.DuckDBPyConnection, out: Path, index: int, parts: int, formats: list[str], seed: int
) -> None:
    day = (workload.FIRST_DAY + timedelta(days=index)).isoformat()
    for fmt in formats:
        folder = out / fmt / day
        folder.mkdir(parents=True, exist_ok=True)
        for part in range(parts):
            rows_sql = _ROWS_SQL.format(
                unknown=UNKNOWN_VARIANT,
                humans=len(HUMAN_USER_AGENTS),
                bots=len(BOT_USER_AGENTS),
                copies=", ".join(str(c) for c in (0, 1, *COPIES) if fmt == "jsonl" or c != 6),
                seed=seed,
                day=index,
                part=part,
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW rows AS {rows_sql}")
            target = _sql_text(folder / f"events-{part:02d}.{fmt}")
            if fmt == "parquet":
                query = (
                    "SELECT event, distinct_id, timestamp, properties, event_id FROM rows "
                    "ORDER BY t_ms, s, p, copy"
                )
                con.execute(f"COPY ({query}) TO {target} (FORMAT parquet)")
            else:
                con.execute(f"COPY ({_JSON_LINE}) TO {target} {_LINES}")


def generate(
    n_events: int, out: Path, *, seed: int = 7, jsonl: bool = False, memory_limit: str = "4GB"
) -> dict[str, Any]:
    """Write the landing files for about `n_events` valid events; return the manifest."""
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, not {n_events}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    formats = ["parquet", "jsonl"] if jsonl else ["parquet"]
    visits_per_day = round(n_events / workload.DAYS / _expected_events_per_visit())
    pool = max(1, round(visits_per_day * workload.DAYS / VISITS_PER_SUBJECT))
    parts = max(1, math.ceil(n_events / workload.DAYS / PART_ROWS))
    started = time.perf_counter()
    totals: dict[str, int] = {}
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = ?", [memory_limit])
        con.execute("SET temp_directory = ?", [str(out / ".spill")])
        con.execute(_MACROS)
        _register_tables(con)
        visits_sql = _VISITS_SQL.format(
            exp_mean=VISIT_EXP_MEAN,
            max_events=MAX_EVENTS_PER_VISIT,
            analysed=workload.ANALYSED,
            kind_cases=_kind_cases(),
        )
        events_sql = _EVENTS_SQL.format(
            no_id=NO_EVENT_ID_SHARE, dup=DUPLICATE_SHARE, corrupt=CORRUPT_SHARE
        )
        for index in range(workload.DAYS):
            day = workload.FIRST_DAY + timedelta(days=index)
            day_ms = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
            con.execute(
                visits_sql,
                {
                    "seed": seed,
                    "day": index,
                    "visits": visits_per_day,
                    "pool": pool,
                    "humans": len(HUMAN_USER_AGENTS),
                },
            )
            con.execute(events_sql, {"seed": seed, "day": index, "day_ms": day_ms, "parts": parts})
            for name, count in _day_counts(con).items():
                totals[name] = totals.get(name, 0) + count
            _write_day(con, out, index, parts, formats, seed)
    shutil.rmtree(out / ".spill", ignore_errors=True)
    manifest = {
        "generator": generator_version(),
        "events": n_events,
        "seed": seed,
        "formats": formats,
        "days": workload.DAYS,
        "files_per_day": parts,
        "visits_per_day": visits_per_day,
        "subject_pool": pool,
        "planted": totals,
        "seconds": round(time.perf_counter() - started, 1),
        "bytes": {
            fmt: sum(p.stat().st_size for p in (out / fmt).rglob("*") if p.is_file())
            for fmt in formats
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=parse_count, default=1_000_000, help="e.g. 1M, 10M")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jsonl", action="store_true", help="also write JSON Lines files")
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args()
    manifest = generate(
        args.events, args.out, seed=args.seed, jsonl=args.jsonl, memory_limit=args.memory_limit
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
