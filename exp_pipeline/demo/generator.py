"""Deterministic demo landing files with known true effects and deliberate anomalies.

The pipeline is only believable if it recovers effects we planted: `TRUE_EFFECTS` says what
each demo experiment really does, and `generate_demo_data` writes raw landing files (one
folder per UTC day, in JSONL, CSV and Parquet) whose events follow those rates. The files
also carry every kind of dirt the loader and the exposure builder must survive (bots,
Do-Not-Track, replayed duplicates, malformed rows, mixed timestamp forms, subjects in two
variants, a variant the catalog does not know); each is counted in the returned
`DemoSummary`, so tests can check the pipeline quarantines and excludes exactly that much.

Everything is random but seeded: numpy draws per (experiment, day) from
`SeedSequence([seed, stream, day])`, the stream derived from the experiment key so catalog
order does not matter, and every identifier is an md5 of the seed and a row position, so
the same seed writes byte-identical files. Work is vectorised: numpy builds
one UTC day at a time as columns, DuckDB renders the text and writes it with `COPY`, so
memory is bounded by one day's events, not by `n_events`.
"""

import hashlib
import json
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from exp_pipeline.catalog import Catalog, Experiment
from exp_pipeline.demo.history import PreExposureHistory
from exp_pipeline.flags import decide
from exp_pipeline.flags.snapshot import preview_snapshot

# The true effect of each demo experiment, per variant key (the variants of
# config/experiments.yaml). Variant-independent behaviour (page views, searches, gaps
# between events, purchase amounts) lives in the journey functions below.
TRUE_EFFECTS: dict[str, dict[str, dict[str, float]]] = {
    # Funnel $pageview -> checkout_started -> purchase: step probabilities, each conditional
    # on the previous step. Control reaches purchase 0.30 * 1/3 = 10% of exposed subjects,
    # test 0.325 * 0.40 = 13%: a real lift of 3 percentage points.
    "checkout-funnel": {
        "control": {"checkout_started": 0.30, "purchase": 1 / 3},
        "test": {"checkout_started": 0.325, "purchase": 0.40},
    },
    # Poisson mean of banner_click per exposed subject: identical, so there is no effect.
    "homepage-banner": {
        "control": {"banner_click": 0.4},
        "banner": {"banner_click": 0.4},
    },
    # P(app_error | app_exposure): the test error rate breaches the 0.10 guardrail.
    "new-search": {
        "control": {"app_error": 0.02},
        "test": {"app_error": 0.20},
    },
}

# Share of n_events given to each experiment (renormalised over those in the catalog).
EVENT_SHARE = {"checkout-funnel": 0.5, "homepage-banner": 0.25, "new-search": 0.25}

# The experiment whose flag also has subjects in two variants and a stale variant key.
MIXED_EXPERIMENT = "checkout-funnel"
STALE_VARIANT = "test-old"

# Organisations (`$groups`, docs/groups.md) follow from the subject number alone, so they
# draw nothing from the random streams: ORG_SIZE consecutive subjects of an experiment
# share one, and every ANONYMOUS_EVERY-th subject belongs to none.
ORG_SIZE = 2
ANONYMOUS_EVERY = 10

# Subject context: a `$set` of country and device.platform on each subject's first event
# (docs/segments.md), except NO_CONTEXT_SHARE of subjects. Drawn from a stream of its own,
# so every other draw, and so every other event, is what it was without it. LU and MT are
# too small to be pooled on their own: the demo's pooling merges them into (other).
CONTEXT_COUNTRIES = {
    "US": 0.38,
    "DE": 0.22,
    "GB": 0.16,
    "FR": 0.12,
    "NL": 0.114,
    "LU": 0.003,
    "MT": 0.003,
}
CONTEXT_PLATFORMS = {"ios": 0.4, "android": 0.35, "web": 0.25}
NO_CONTEXT_SHARE = 0.06

# Used when a catalog window has no start, or no end (an open-ended experiment).
DEFAULT_FIRST_DAY = date(2026, 11, 1)
DEFAULT_DAYS = 14

# Shares of subjects (per experiment and day, at least one subject each; disjoint sets).
BOT_SHARE = 0.01
DNT_SHARE = 0.015
MIXED_VARIANT_SHARE = 0.005
STALE_VARIANT_SHARE = 0.003
# Share of a day's valid events replayed into `<day>/replay.jsonl` (at least one).
DUPLICATE_SHARE = 0.005
# Share of a day file's rows per malformed kind (at least one of each kind per file).
MALFORMED_SHARE = 0.0005

HUMAN_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
HUMAN_USER_AGENT_WEIGHTS = (0.38, 0.17, 0.2, 0.13, 0.06, 0.06)
BOT_USER_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.31.0",
)

# Timestamp text forms, in the order of the `ts_form` codes rendered by _ROWS_SQL.
TIMESTAMP_FORMS = ("z", "naive_t", "naive_space", "offset")
TIMESTAMP_FORM_WEIGHTS = (0.7, 0.1, 0.1, 0.1)
OFFSET_MINUTES = (60, -300, 330, 540)

# Malformed row kinds (codes rendered by _ROWS_SQL) and the day formats that carry them.
_INVALID_JSON = 1
_MISSING_DISTINCT_ID = 2
_BAD_TIMESTAMP = 3
_PROPERTIES_NOT_OBJECT = 4
_EXTRA_COLUMNS = 5
_MALFORMED_NAMES = {
    _INVALID_JSON: "invalid_json_lines",
    _MISSING_DISTINCT_ID: "missing_distinct_id",
    _BAD_TIMESTAMP: "bad_timestamp",
    _PROPERTIES_NOT_OBJECT: "properties_not_object",
    _EXTRA_COLUMNS: "csv_extra_columns",
}
_MALFORMED_KINDS = {
    "jsonl": (_INVALID_JSON, _MISSING_DISTINCT_ID, _BAD_TIMESTAMP, _PROPERTIES_NOT_OBJECT),
    "csv": (_MISSING_DISTINCT_ID, _BAD_TIMESTAMP, _PROPERTIES_NOT_OBJECT),
    "parquet": (_MISSING_DISTINCT_ID, _BAD_TIMESTAMP, _PROPERTIES_NOT_OBJECT),
}

_DAY_MS = 86_400_000
_GAP_MEAN_MS = 90_000  # mean time between two events of one subject
_GAP_MAX_MS = 900_000
_CALIBRATION_SUBJECTS = 4096
_FILE_STREAM = 0  # SeedSequence stream of the per-day file draws (experiments: crc32 of key)
_CALIBRATION_STREAM = 2**32
_CONTEXT_STREAM = 2**32 + 1
_CSV_HEADER = "event,distinct_id,timestamp,properties,event_id"


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo_data` wrote, with the exact count of every planted anomaly.

    `files` are paths relative to `out_dir`; `files_written` counts them per format (the
    replay files are JSONL). `events_written` counts distinct well-formed events;
    `rows_written` counts every data row of every file (also malformed rows and replayed
    duplicates, not the CSV header).
    `anomalies` keys: bot_subjects, bot_events, dnt_subjects, dnt_events,
    duplicate_events, invalid_json_lines, missing_distinct_id, bad_timestamp,
    properties_not_object, csv_extra_columns, multi_variant_subjects,
    unknown_variant_subjects, unknown_variant_events. `timestamp_forms` counts the
    well-formed events per form (z, naive_t, naive_space, offset).
    `pre_exposure_events` of those events are the CUPED history before the windows
    (`exp_pipeline.demo.history`, in `<day>/history.jsonl`, z form); `days` includes its days.
    """

    out_dir: Path
    seed: int
    days: tuple[str, ...]
    files: tuple[str, ...]
    files_written: dict[str, int]
    rows_written: int
    events_written: int
    events_per_experiment: dict[str, int]
    subjects_per_experiment: dict[str, int]
    anomalies: dict[str, int]
    timestamp_forms: dict[str, int]
    pre_exposure_events: int


@dataclass(frozen=True)
class _Plan:
    """One experiment to simulate: its place in the code tables, window and daily sizes."""

    index: int
    experiment: Experiment
    variant_codes: np.ndarray  # global variant code of each catalog variant, in order
    start_ms: int  # window as epoch milliseconds, [start_ms, end_ms)
    end_ms: int
    subjects_per_day: dict[date, int]
    first_subject: dict[date, int]  # numbering offset, so subject numbers never repeat
    snapshot: dict[str, Any]  # the flags snapshot subjects are assigned with (`decide`)


def generate_demo_data(
    out_dir: Path, catalog: Catalog, *, n_events: int = 200_000, seed: int = 7
) -> DemoSummary:
    """Write seeded demo landing files for the catalog's demo experiments into `out_dir`.

    Only experiments named in `TRUE_EFFECTS` are simulated (their variant keys must match);
    their windows decide the UTC days written. `n_events` is met within a few percent.
    Files of an earlier run with the same catalog are overwritten; nothing is deleted.
    """
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, not {n_events}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, not {seed}")
    out_dir = Path(out_dir)
    experiments = [e for e in catalog.experiments if e.key in TRUE_EFFECTS]
    if not experiments:
        raise ValueError(f"the catalog has none of the demo experiments {sorted(TRUE_EFFECTS)}")
    for experiment in experiments:
        catalog_keys = sorted(v.key for v in experiment.variants)
        if catalog_keys != sorted(TRUE_EFFECTS[experiment.key]):
            raise ValueError(
                f"experiment {experiment.key!r}: variants {catalog_keys} differ from the "
                f"demo's true effects {sorted(TRUE_EFFECTS[experiment.key])}"
            )
    variant_names = sorted({v.key for e in experiments for v in e.variants} | {STALE_VARIANT})
    plans = _plan(
        experiments, catalog.timezone, variant_names, n_events, seed, preview_snapshot(catalog)
    )
    days = sorted({day for plan in plans for day in plan.subjects_per_day})
    # One CSV day and one Parquet day, a third and two thirds into the window; others JSONL.
    formats = {days[len(days) // 3]: "csv", days[2 * len(days) // 3]: "parquet"}
    tables = _Tables(
        experiments=tuple(e.key for e in experiments),
        flags=tuple(e.feature_flag_key for e in experiments),
        variants=tuple(variant_names),
    )

    tally = _Tally(
        anomalies=dict.fromkeys(
            (
                "bot_subjects",
                "bot_events",
                "dnt_subjects",
                "dnt_events",
                "duplicate_events",
                *_MALFORMED_NAMES.values(),
                "multi_variant_subjects",
                "unknown_variant_subjects",
                "unknown_variant_events",
            ),
            0,
        ),
        timestamp_forms=dict.fromkeys(TIMESTAMP_FORMS, 0),
        events_per_experiment=dict.fromkeys(tables.experiments, 0),
        subjects_per_experiment=dict.fromkeys(tables.experiments, 0),
    )
    files: list[str] = []
    history = PreExposureHistory(
        [(plan.index, plan.experiment, plan.start_ms) for plan in plans],
        seed,
        tables.events,
        tables.user_agents,
        len(HUMAN_USER_AGENTS),
    )
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(_MACROS_SQL)
        for day in days:
            parts = [
                _simulate(plan, day, seed, tables, tally)
                for plan in plans
                if day in plan.subjects_per_day
            ]
            columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
            history.observe(columns)
            fmt = formats.get(day, "jsonl")
            day_table = _finish_day(columns, fmt, seed, day, tables, tally)
            files += _write_day(con, out_dir, day, fmt, day_table, seed)
        written = history.write(con, out_dir)
        files += written.files
    for key, n in written.events.items():
        tally.events_per_experiment[key] += n
    tally.timestamp_forms["z"] += sum(written.events.values())

    files_written = dict.fromkeys(("jsonl", "csv", "parquet"), 0)
    for name in files:
        files_written[name.rsplit(".", 1)[1]] += 1
    malformed = sum(tally.anomalies[name] for name in _MALFORMED_NAMES.values())
    events = sum(tally.events_per_experiment.values())
    return DemoSummary(
        out_dir=out_dir,
        seed=seed,
        days=tuple(sorted({*(day.isoformat() for day in days), *written.days})),
        files=tuple(files),
        files_written=files_written,
        rows_written=events + malformed + tally.anomalies["duplicate_events"],
        events_written=events,
        events_per_experiment=tally.events_per_experiment,
        subjects_per_experiment=tally.subjects_per_experiment,
        anomalies=tally.anomalies,
        timestamp_forms=tally.timestamp_forms,
        pre_exposure_events=sum(written.events.values()),
    )


@dataclass(frozen=True)
class _Tables:
    """String tables: columns hold small integer codes into these until DuckDB renders."""

    experiments: tuple[str, ...]
    flags: tuple[str, ...]
    variants: tuple[str, ...]
    events: tuple[str, ...] = (
        "$pageview",
        "checkout_started",
        "purchase",
        "$feature_flag_called",
        "banner_click",
        "app_exposure",
        "app_error",
        "search",
    )
    user_agents: tuple[str, ...] = HUMAN_USER_AGENTS + BOT_USER_AGENTS
    # `$set` objects by context code: country × platform, in the tables' order.
    contexts: tuple[str, ...] = tuple(
        json.dumps({"country": c, "device": {"platform": p}}, separators=(",", ":"))
        for c in CONTEXT_COUNTRIES
        for p in CONTEXT_PLATFORMS
    )


@dataclass(frozen=True)
class _Tally:
    """Running counts for the summary (mutable dicts inside a frozen holder)."""

    anomalies: dict[str, int]
    timestamp_forms: dict[str, int]
    events_per_experiment: dict[str, int]
    subjects_per_experiment: dict[str, int]


def _window_days(experiment: Experiment, timezone: str) -> tuple[int, int, list[date]]:
    """The window as [start_ms, end_ms) and the UTC days it touches (open end: 14 days)."""
    start, end = experiment.window(timezone)
    if start is None:
        start = datetime.combine(DEFAULT_FIRST_DAY, datetime.min.time(), tzinfo=UTC)
    if end is None:
        end = datetime.combine(
            start.date() + timedelta(days=DEFAULT_DAYS), datetime.min.time(), tzinfo=UTC
        )
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    first = start.astimezone(UTC).date()
    last = datetime.fromtimestamp((end_ms - 1) / 1000, UTC).date()
    return start_ms, end_ms, [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _plan(
    experiments: list[Experiment],
    timezone: str,
    variant_names: list[str],
    n_events: int,
    seed: int,
    snapshot: dict[str, Any],
) -> list[_Plan]:
    """Size every experiment's subjects so the events add up to about `n_events`."""
    total_share = sum(EVENT_SHARE[e.key] for e in experiments)
    plans = []
    for index, experiment in enumerate(experiments):
        start_ms, end_ms, days = _window_days(experiment, timezone)
        budget = n_events * EVENT_SHARE[experiment.key] / total_share
        per_subject = _events_per_subject(experiment, seed, snapshot)
        subjects = max(len(days), round(budget / per_subject))
        per_day = [subjects // len(days) + (i < subjects % len(days)) for i in range(len(days))]
        offsets = np.cumsum([0, *per_day[:-1]]).tolist()
        plans.append(
            _Plan(
                index=index,
                experiment=experiment,
                variant_codes=np.array(
                    [variant_names.index(v.key) for v in experiment.variants], dtype=np.int16
                ),
                start_ms=start_ms,
                end_ms=end_ms,
                subjects_per_day=dict(zip(days, per_day, strict=True)),
                first_subject=dict(zip(days, offsets, strict=True)),
                snapshot=snapshot,
            )
        )
    return plans


def _events_per_subject(experiment: Experiment, seed: int, snapshot: dict[str, Any]) -> float:
    """Mean events per subject, measured on a seeded sample of the experiment's journeys.

    Measuring instead of deriving a formula keeps the journey functions the only place
    that defines behaviour.
    """
    rng = np.random.default_rng([seed, _CALIBRATION_STREAM])
    ids = [f"calibration-{i}" for i in range(_CALIBRATION_SUBJECTS)]
    variant = _assign(snapshot, experiment, ids)
    (bot,) = _disjoint(rng, _CALIBRATION_SUBJECTS, (BOT_SHARE,))
    counts, _, _ = _JOURNEYS[experiment.key](rng, experiment, variant, bot)
    return float(counts.sum()) / _CALIBRATION_SUBJECTS


def subject_ids(seed: int, experiment_key: str, numbers: np.ndarray) -> list[str]:
    """The distinct ids of subjects `numbers`: the UUID text the landing SQL's
    `uuid_of('{seed}:subject:{experiment}:{number}')` renders (DuckDB's md5_number as a
    UUID is the digest's bytes reversed), needed here to assign subjects before rendering."""
    return [
        str(
            uuid.UUID(
                bytes=hashlib.md5(f"{seed}:subject:{experiment_key}:{n}".encode()).digest()[::-1]
            )
        )
        for n in numbers.tolist()
    ]


def _assign(snapshot: dict[str, Any], experiment: Experiment, ids: list[str]) -> np.ndarray:
    """Variant index (into the catalog's variants) per subject, as `decide` assigns it.

    The demo's sample-ratio checks then see the documented hashing's real assignment
    (exact shares vary by hash, not by a random draw), as they would in production.
    """
    index = {v.key: i for i, v in enumerate(experiment.variants)}
    flag = experiment.feature_flag_key
    return np.array(
        [
            index[decide(snapshot, flag, i, subject_type=experiment.subject_type).variant]
            for i in ids
        ],
        dtype=np.int64,
    )


def _effect(experiment: Experiment, variant: np.ndarray, name: str) -> np.ndarray:
    """The TRUE_EFFECTS parameter `name` of each subject's variant."""
    effects = TRUE_EFFECTS[experiment.key]
    return np.array([effects[v.key][name] for v in experiment.variants])[variant]


# A journey turns subjects into per-kind event counts: (counts[subject, kind], event name
# per kind, whether kinds after the first are shuffled in time). Kind 0 is the subject's
# exposure and every subject has at least one, so each subject has at least one event.
def _checkout_journey(
    rng: np.random.Generator, experiment: Experiment, variant: np.ndarray, bot: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], bool]:
    """Page views, then maybe checkout, then maybe purchase; bots browse and never buy."""
    pageviews = 1 + rng.poisson(np.where(bot, 5.0, 0.8))
    started = (rng.random(variant.size) < _effect(experiment, variant, "checkout_started")) & ~bot
    bought = started & (rng.random(variant.size) < _effect(experiment, variant, "purchase"))
    counts = np.column_stack([pageviews, started, bought])
    return counts, ("$pageview", "checkout_started", "purchase"), False


def _banner_journey(
    rng: np.random.Generator, experiment: Experiment, variant: np.ndarray, bot: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], bool]:
    """One flag evaluation, page views and banner clicks; bots never click."""
    pageviews = rng.poisson(np.where(bot, 5.0, 1.5))
    clicks = np.where(bot, 0, rng.poisson(_effect(experiment, variant, "banner_click")))
    counts = np.column_stack([np.ones_like(pageviews), pageviews, clicks])
    return counts, ("$feature_flag_called", "$pageview", "banner_click"), True


def _search_journey(
    rng: np.random.Generator, experiment: Experiment, variant: np.ndarray, bot: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...], bool]:
    """App exposures with errors at the variant's rate, and searches; bots see no errors."""
    exposures = 1 + rng.poisson(np.where(bot, 5.0, 1.5))
    errors = np.where(bot, 0, rng.binomial(exposures, _effect(experiment, variant, "app_error")))
    searches = rng.poisson(2.0, size=variant.size)
    counts = np.column_stack([exposures, searches, errors])
    return counts, ("app_exposure", "search", "app_error"), True


_JOURNEYS = {
    "checkout-funnel": _checkout_journey,
    "homepage-banner": _banner_journey,
    "new-search": _search_journey,
}


def _disjoint(rng: np.random.Generator, n: int, shares: tuple[float, ...]) -> list[np.ndarray]:
    """Disjoint random subject masks, one per share, each of at least one subject."""
    order = rng.permutation(n)
    masks, used = [], 0
    for share in shares:
        size = min(max(1, round(share * n)), n - used)
        mask = np.zeros(n, dtype=bool)
        mask[order[used : used + size]] = True
        masks.append(mask)
        used += size
    return masks


def _simulate(
    plan: _Plan, day: date, seed: int, tables: _Tables, tally: _Tally
) -> dict[str, np.ndarray]:
    """Simulate one experiment's subjects of one day as event columns (codes, not text)."""
    experiment = plan.experiment
    rng = np.random.default_rng([seed, zlib.crc32(experiment.key.encode()), day.toordinal()])
    n = plan.subjects_per_day[day]
    numbers = plan.first_subject[day] + np.arange(n, dtype=np.int64)
    variant = _assign(plan.snapshot, experiment, subject_ids(seed, experiment.key, numbers))
    bot, dnt, mixed, stale = _disjoint(
        rng, n, (BOT_SHARE, DNT_SHARE, MIXED_VARIANT_SHARE, STALE_VARIANT_SHARE)
    )
    if experiment.key != MIXED_EXPERIMENT or len(experiment.variants) < 2:
        mixed[:] = stale[:] = False
    counts, kind_events, shuffle = _JOURNEYS[experiment.key](rng, experiment, variant, bot)

    day_ms = int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp() * 1000)
    lo, hi = max(day_ms, plan.start_ms), min(day_ms + _DAY_MS, plan.end_ms)
    owner, kind, t_ms = _expand(rng, counts, lo, hi, shuffle)
    event = np.array([tables.events.index(e) for e in kind_events], dtype=np.int8)[kind]
    labels = plan.variant_codes[variant]
    labels[stale] = tables.variants.index(STALE_VARIANT)
    label = labels[owner]
    session = np.zeros(owner.size, dtype=np.int8)
    # The context rides on each subject's first event (owner is sorted, the first event
    # of a subject is its earliest): -1 elsewhere.
    context = _context_codes(seed, experiment.key, day, n)[owner]
    context[1:][owner[1:] == owner[:-1]] = -1
    if mixed.any():
        # A subject in two variants comes back in a second session after its last event
        # and is served another variant: one more event like its first.
        switchers = np.flatnonzero(mixed)
        first = np.searchsorted(owner, switchers, side="left")
        last = np.searchsorted(owner, switchers, side="right") - 1
        n_variants = len(experiment.variants)
        other = (variant[switchers] + rng.integers(1, n_variants, switchers.size)) % n_variants
        gap = rng.integers(60_000, 3_600_000, switchers.size)
        owner = np.concatenate([owner, switchers])
        event = np.concatenate([event, event[first]])
        t_ms = np.concatenate([t_ms, np.minimum(t_ms[last] + gap, hi - 1)])
        label = np.concatenate([label, plan.variant_codes[other]])
        session = np.concatenate([session, np.ones(switchers.size, dtype=np.int8)])
        context = np.concatenate([context, np.full(switchers.size, -1, dtype=context.dtype)])

    purchase = event == tables.events.index("purchase")
    amount = np.full(owner.size, np.nan)
    amount[purchase] = np.round(rng.lognormal(np.log(45.0), 0.6, int(purchase.sum())), 2)
    human_ua = rng.choice(len(HUMAN_USER_AGENTS), size=n, p=HUMAN_USER_AGENT_WEIGHTS)
    bot_ua = len(HUMAN_USER_AGENTS) + rng.integers(0, len(BOT_USER_AGENTS), n)
    user_agent = np.where(bot, bot_ua, human_ua).astype(np.int16)

    anomalies = tally.anomalies
    anomalies["bot_subjects"] += int(bot.sum())
    anomalies["bot_events"] += int(bot[owner].sum())
    anomalies["dnt_subjects"] += int(dnt.sum())
    anomalies["dnt_events"] += int(dnt[owner].sum())
    anomalies["multi_variant_subjects"] += int(mixed.sum())
    anomalies["unknown_variant_subjects"] += int(stale.sum())
    anomalies["unknown_variant_events"] += int(stale[owner].sum())
    tally.events_per_experiment[experiment.key] += owner.size
    tally.subjects_per_experiment[experiment.key] += n
    return {
        "experiment": np.full(owner.size, plan.index, dtype=np.int8),
        "subject": numbers[owner],
        "session": session,
        "event": event,
        "variant": label,
        "t_ms": t_ms,
        "amount": amount,
        "dnt": dnt[owner],
        "user_agent": user_agent[owner],
        "context": context,
    }


def _context_codes(seed: int, experiment_key: str, day: date, n: int) -> np.ndarray:
    """Each of a day's subjects' context code (into `_Tables.contexts`; -1: no `$set`)."""
    rng = np.random.default_rng(
        [seed, _CONTEXT_STREAM, zlib.crc32(experiment_key.encode()), day.toordinal()]
    )
    country = rng.choice(len(CONTEXT_COUNTRIES), size=n, p=list(CONTEXT_COUNTRIES.values()))
    platform = rng.choice(len(CONTEXT_PLATFORMS), size=n, p=list(CONTEXT_PLATFORMS.values()))
    codes = country * len(CONTEXT_PLATFORMS) + platform
    codes[rng.random(n) < NO_CONTEXT_SHARE] = -1
    return codes


def _expand(
    rng: np.random.Generator, counts: np.ndarray, lo: int, hi: int, shuffle: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn per-subject kind counts into events (owner, kind, epoch ms) inside [lo, hi).

    Events of a subject are ordered by kind (or shuffled after the first) and spaced by
    exponential gaps; the whole journey is placed uniformly in the day so it fits.
    """
    n, n_kinds = counts.shape
    per_subject = counts.sum(axis=1)
    owner = np.repeat(np.arange(n), per_subject)
    kind = np.repeat(np.tile(np.arange(n_kinds), n), counts.ravel())
    starts = np.cumsum(per_subject) - per_subject
    if shuffle:
        key = rng.random(owner.size)
        key[starts] = -1.0
        kind = kind[np.lexsort((key, owner))]
    gaps = np.minimum(rng.exponential(_GAP_MEAN_MS, owner.size), _GAP_MAX_MS).astype(np.int64)
    gaps[starts] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts], per_subject)
    span = elapsed[starts + per_subject - 1]
    t0 = lo + (rng.random(n) * np.maximum(hi - lo - span, 1)).astype(np.int64)
    return owner, kind, np.minimum(t0[owner] + elapsed, hi - 1)


def _finish_day(
    columns: dict[str, np.ndarray], fmt: str, seed: int, day: date, tables: _Tables, tally: _Tally
) -> pa.Table:
    """Order a day's events by time and draw the per-row choices: timestamp form, replay
    duplicates and malformed copies; return the Arrow table DuckDB renders."""
    rng = np.random.default_rng([seed, _FILE_STREAM, day.toordinal()])
    order = np.argsort(columns["t_ms"], kind="stable")
    columns = {name: values[order] for name, values in columns.items()}
    n = order.size
    ts_form = rng.choice(len(TIMESTAMP_FORMS), size=n, p=TIMESTAMP_FORM_WEIGHTS).astype(np.int8)
    offset = np.array(OFFSET_MINUTES, dtype=np.int16)[rng.integers(0, len(OFFSET_MINUTES), n)]
    (dup,) = _disjoint(rng, n, (DUPLICATE_SHARE,))

    kinds = _MALFORMED_KINDS[fmt]
    per_kind = max(1, round(n * MALFORMED_SHARE))
    victims = rng.choice(n, size=min(n, per_kind * len(kinds) + (fmt == "csv")), replace=False)
    bad = np.zeros(n, dtype=np.int8)
    codes = np.repeat(np.array(kinds, dtype=np.int8), per_kind)
    if fmt == "csv":
        codes = np.append(codes, np.int8(_EXTRA_COLUMNS))
    bad[victims] = codes[: victims.size]

    for code, name in _MALFORMED_NAMES.items():
        tally.anomalies[name] += int((bad == code).sum())
    tally.anomalies["duplicate_events"] += int(dup.sum())
    for code, name in enumerate(TIMESTAMP_FORMS):
        tally.timestamp_forms[name] += int((ts_form == code).sum())

    def coded(codes: np.ndarray, names: Iterable[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(codes, pa.array(list(names)))

    def coded_json(codes: np.ndarray, names: Iterable[str]) -> pa.DictionaryArray:
        return coded(codes, (json.dumps(name) for name in names))

    amount = columns["amount"]
    experiment = columns["experiment"]
    return pa.table(
        {
            "row_no": np.arange(n, dtype=np.int64),
            "experiment": coded(experiment, tables.experiments),
            "flag_json": coded_json(experiment, tables.flags),
            "feature_json": coded_json(experiment, (f"$feature/{f}" for f in tables.flags)),
            "subject": columns["subject"],
            "session": columns["session"],
            "event": coded(columns["event"], tables.events),
            "event_json": coded_json(columns["event"], tables.events),
            "variant_json": coded_json(columns["variant"], tables.variants),
            "t_ms": columns["t_ms"],
            "amount": pa.array(amount, mask=np.isnan(amount)),
            "dnt": columns["dnt"],
            "user_agent_json": coded_json(columns["user_agent"], tables.user_agents),
            "set_json": pa.DictionaryArray.from_arrays(
                pa.array(np.maximum(columns["context"], 0), mask=columns["context"] < 0),
                pa.array(tables.contexts),
            ),
            "ts_form": ts_form,
            "offset_minutes": offset,
            "dup": dup,
            "bad": bad,
        }
    )


_MACROS_SQL = """
CREATE TEMP MACRO uuid_of(text) AS md5_number(text)::UUID::VARCHAR;
CREATE TEMP MACRO offset_text(m) AS
    printf('%s%02d:%02d', CASE WHEN m < 0 THEN '-' ELSE '+' END, abs(m) // 60, abs(m) % 60);
"""

# Renders the registered `day_events` into landing rows: every event once (malformed = 0),
# plus a corrupted copy (with its own event_id) of each row picked as malformed. `{seed}`
# and `{day}` are integers formatted in by Python. Strings from the code tables arrive
# JSON-encoded (`*_json`), and the ids and timestamps made here contain nothing JSON or
# CSV must escape, so no value is escaped per row.
_ROWS_SQL = """
CREATE OR REPLACE TEMP VIEW day_rows AS
WITH valid AS (
    SELECT row_no, bad, dup, event, event_json,
        uuid_of('{seed}:subject:' || experiment || ':' || subject) AS distinct_id,
        CASE ts_form
            WHEN 0 THEN strftime(epoch_ms(t_ms), '%Y-%m-%dT%H:%M:%S.%gZ')
            WHEN 1 THEN strftime(epoch_ms(t_ms), '%Y-%m-%dT%H:%M:%S')
            WHEN 2 THEN strftime(epoch_ms(t_ms), '%Y-%m-%d %H:%M:%S')
            ELSE strftime(epoch_ms(t_ms) + to_minutes(offset_minutes), '%Y-%m-%dT%H:%M:%S')
                || offset_text(offset_minutes)
        END AS timestamp,
        '{{"session_id":"'
            || uuid_of('{seed}:session:' || experiment || ':' || subject || ':' || session)
            || '","$user_agent":' || user_agent_json
            || CASE WHEN event = '$feature_flag_called'
                THEN ',"$feature_flag":' || flag_json || ',"$feature_flag_response":'
                ELSE ',' || feature_json || ':'
            END
            || variant_json
            || coalesce(',"amount":' || amount::DECIMAL(12, 2)::VARCHAR, '')
            || coalesce(',"$set":' || set_json, '')
            || CASE WHEN dnt THEN ',"$dnt":1' ELSE '' END
            || CASE WHEN subject % {anonymous_every} = {anonymous_every} - 1 THEN ''
                ELSE ',"$groups":{{"organization":"org-' || experiment || '-'
                    || subject // {org_size} || '"}}' END
            || '}}' AS properties,
        uuid_of('{seed}:event:{day}:' || row_no) AS event_id
    FROM day_events
), landing AS (
    SELECT row_no, 0 AS malformed, dup, event, event_json, distinct_id, timestamp, properties,
        event_id
    FROM valid
    UNION ALL
    SELECT row_no, bad, false, event, event_json,
        CASE WHEN bad = {missing} THEN NULL ELSE distinct_id END,
        CASE WHEN bad <> {bad_ts} THEN timestamp
            WHEN row_no % 2 = 0 THEN 'not-a-time' ELSE '2026-13-45' END,
        CASE WHEN bad <> {not_object} THEN properties
            WHEN row_no % 2 = 0 THEN '[' || properties || ']'
            ELSE to_json(properties)::VARCHAR END,
        uuid_of('{seed}:malformed:{day}:' || row_no)
    FROM valid
    WHERE bad > 0
)
SELECT *,
    '{{"event":' || event_json
        || coalesce(',"distinct_id":"' || distinct_id || '"', '')
        || ',"timestamp":"' || timestamp
        || '","properties":' || properties
        || ',"event_id":"' || event_id || '"}}' AS json_line,
    event || ',' || coalesce(distinct_id, '') || ',' || timestamp
        || ',"' || replace(properties, '"', '""') || '",' || event_id
        || CASE WHEN malformed = {extra} THEN ',unexpected' ELSE '' END AS csv_line
FROM landing
"""

# Writes one text column verbatim, one value a line: QUOTE '' and ESCAPE '' turn CSV
# quoting off, and the delimiter never occurs because there is only one column.
_LINES = "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')"


def _write_day(
    con: duckdb.DuckDBPyConnection, out_dir: Path, day: date, fmt: str, table: pa.Table, seed: int
) -> list[str]:
    """Write the day file (`events.<fmt>`) and `replay.jsonl`; return their relative paths."""
    folder = out_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    con.register("day_events", table)
    con.execute(
        _ROWS_SQL.format(
            seed=seed,
            day=day.toordinal(),
            org_size=ORG_SIZE,
            anonymous_every=ANONYMOUS_EVERY,
            missing=_MISSING_DISTINCT_ID,
            bad_ts=_BAD_TIMESTAMP,
            not_object=_PROPERTIES_NOT_OBJECT,
            extra=_EXTRA_COLUMNS,
        )
    )
    events_path = folder / f"events.{fmt}"
    if fmt == "jsonl":
        query = f"""
            SELECT CASE WHEN malformed = {_INVALID_JSON}
                THEN left(json_line, length(json_line) // 2) ELSE json_line END
            FROM day_rows ORDER BY row_no, malformed"""
        options = _LINES
    elif fmt == "csv":
        query = f"""
            SELECT line FROM (
                SELECT -1 AS row_no, 0 AS malformed, '{_CSV_HEADER}' AS line
                UNION ALL SELECT row_no, malformed, csv_line FROM day_rows
            ) ORDER BY row_no, malformed"""
        options = _LINES
    else:
        query = """
            SELECT event, distinct_id, timestamp, properties, event_id
            FROM day_rows ORDER BY row_no, malformed"""
        options = "(FORMAT parquet)"
    con.execute(f"COPY ({query}) TO {_sql_text(events_path)} {options}")
    replay_path = folder / "replay.jsonl"
    con.execute(
        f"COPY (SELECT json_line FROM day_rows WHERE dup AND malformed = 0 ORDER BY row_no) "
        f"TO {_sql_text(replay_path)} {_LINES}"
    )
    con.unregister("day_events")
    return [p.relative_to(out_dir).as_posix() for p in (events_path, replay_path)]


def _sql_text(path: Path) -> str:
    """`path` as a SQL string literal (COPY takes no parameters for its target)."""
    return "'" + str(path).replace("'", "''") + "'"
