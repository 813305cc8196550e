"""Pre-exposure history for the demo: what CUPED adjusts by.

A metric with `cuped:` (exp_pipeline.analysis.cuped_sums) is adjusted by each subject's
value of it over the `lookback_days` before its first exposure. The demo's experiment
events all lie inside their windows, so without history every covariate is 0 and CUPED
removes nothing. This module writes, for the subjects of each demo experiment with a
CUPED spending metric (a `continuous` metric on the demo's `amount` property), earlier
events of that metric's event with an amount, such that a subject's spending before and
in the experiment are correlated, as real repeat customers' are.

The history is drawn after the experiment's events, from its own random stream
(`SeedSequence([seed, HISTORY_STREAM, crc32(experiment key)])`), so every other demo
file stays byte-identical to what it is without history. Drawn second, it must still be
what a real pre-period is: independent of the variant (CUPED's one requirement; a
covariate that knows the variant biases the adjusted effect). So it is not drawn from a
subject's in-experiment outcome, which the variant moves, but from a latent propensity
that outcome reveals:

* a subject bought in the experiment when its propensity u ~ U(0, 1) fell below its
  variant's buying rate r; given the outcome, u is drawn back from U(0, r) (bought) or
  U(r, 1) (did not), with r the variant's observed share of buyers. Across a variant's
  subjects those draws are again U(0, 1), whatever r, so u is independent of the variant;
* a subject's order value w is its in-experiment order value, or for a non-buyer one
  resampled from all buyers' (the demo's order values do not depend on the variant);
* a habitual subject (share `HABITUAL_SHARE`) bought before when its own u fell below
  the experiment's overall buying rate, any other when a fresh uniform did; each earlier
  order's value is w scattered log-normally (`ORDER_VALUE_SIGMA`).

So the subjects who buy in the experiment are mostly those who bought before, at similar
order values: before and during correlate about 0.55 on the demo, and CUPED removes about
30% of the variance, without moving the variants' covariate means apart.

The events carry no flag property (they must not expose anyone) and are dated in
[first exposure − lookback, window start): before the window, because conversions count
every event of an exposed subject inside the window (exposure or not), and the history
must not change the in-experiment metric. Bots and Do-Not-Track subjects get none: the
analysis never reads their events. Each event lands in `<UTC day>/history.jsonl`, the
landing folder of its day, like every other demo event.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from exp_pipeline.catalog import ContinuousMetric, Experiment

HISTORY_STREAM = 2**32 + 2  # SeedSequence stream (the generator's are below it)
HISTORY_FILE = "history.jsonl"
# The value property the demo generator writes (on purchases).
AMOUNT_PROPERTY = "amount"

# How a subject's spending before the experiment follows its latent propensity.
HABITUAL_SHARE = 0.66  # subjects whose earlier buying follows their propensity
ORDER_VALUE_SIGMA = 0.4  # log-normal scatter of earlier orders around a subject's value
EXTRA_ORDERS_MEAN = 0.25  # earlier orders per history subject: 1 + Poisson(this)

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class HistoryWritten:
    """What `PreExposureHistory.write` wrote: landing files (relative to the landing
    folder, one per UTC day) and events per experiment key."""

    files: tuple[str, ...]
    events: dict[str, int]

    @property
    def days(self) -> tuple[str, ...]:
        """The UTC days (landing folder names) the history was written to."""
        return tuple(name.split("/", 1)[0] for name in self.files)


@dataclass
class _Target:
    """One experiment that gets history, and its subjects seen so far (per-day arrays)."""

    index: int  # the experiment's code in the generator's day columns
    key: str
    metric: ContinuousMetric
    event_code: int  # the metric event's code in the generator's event table
    start_ms: int  # window start, epoch milliseconds
    # Per simulated day, per subject: subject, first_ms, variant, spend, orders, user_agent.
    days: list[dict[str, np.ndarray]] = field(default_factory=list)

    def observed(self) -> dict[str, np.ndarray]:
        """Every observed subject's columns, days concatenated."""
        return {name: np.concatenate([d[name] for d in self.days]) for name in self.days[0]}


def cuped_spending_metric(experiment: Experiment) -> ContinuousMetric | None:
    """The experiment's first CUPED metric on the demo's amount property, if any."""
    for metric in experiment.metrics:
        if (
            isinstance(metric, ContinuousMetric)
            and metric.cuped is not None
            and metric.property == AMOUNT_PROPERTY
        ):
            return metric
    return None


class PreExposureHistory:
    """Collects the subjects of the experiments with a CUPED spending metric from the
    generator's simulated days (`observe`), then writes their history (`write`).

    `experiments` are (code in the day columns, experiment, window start in epoch ms);
    `events` and `user_agents` are the generator's code tables, and codes of
    `user_agents` from `human_agents` on are bots'.
    """

    def __init__(
        self,
        experiments: list[tuple[int, Experiment, int]],
        seed: int,
        events: tuple[str, ...],
        user_agents: tuple[str, ...],
        human_agents: int,
    ) -> None:
        self._seed = seed
        self._user_agents = user_agents
        self._human_agents = human_agents
        self._targets = [
            _Target(index, experiment.key, metric, events.index(metric.event), start_ms)
            for index, experiment, start_ms in experiments
            if (metric := cuped_spending_metric(experiment)) is not None and metric.event in events
        ]

    def observe(self, columns: dict[str, np.ndarray]) -> None:
        """Record, per subject of a day's event columns, its first event (its exposure:
        every demo experiment event carries the flag), its variant, its spending on the
        metric's event and its user agent. A subject's events all lie in one simulated
        day; bots and Do-Not-Track subjects are left out."""
        for target in self._targets:
            mine = columns["experiment"] == target.index
            analysable = mine & ~columns["dnt"] & (columns["user_agent"] < self._human_agents)
            subjects, first, inverse = np.unique(
                columns["subject"][analysable], return_index=True, return_inverse=True
            )
            if subjects.size == 0:
                continue
            t_ms = columns["t_ms"][analysable]
            first_ms = np.full(subjects.size, np.iinfo(np.int64).max)
            np.minimum.at(first_ms, inverse, t_ms)
            ordered = columns["event"][analysable] == target.event_code
            amount = np.where(ordered, np.nan_to_num(columns["amount"][analysable]), 0.0)
            target.days.append(
                {
                    "subject": subjects,
                    "first_ms": first_ms,
                    "variant": columns["variant"][analysable][first],
                    "spend": np.bincount(inverse, weights=amount, minlength=subjects.size),
                    "orders": np.bincount(inverse, weights=ordered, minlength=subjects.size),
                    "user_agent": columns["user_agent"][analysable][first],
                }
            )

    def write(self, con: duckdb.DuckDBPyConnection, out_dir: Path) -> HistoryWritten:
        """Draw and write the history of every subject observed. `con` is the generator's
        connection: its `uuid_of` macro renders the subjects' distinct ids exactly as
        their experiment events have them."""
        drawn = {target.key: self._draw(target) for target in self._targets if target.days}
        events = {target.key: 0 for target in self._targets}
        events.update({key: table.num_rows for key, table in drawn.items()})
        if not drawn:
            return HistoryWritten(files=(), events=events)
        history = pa.concat_tables(drawn.values())
        day_of = history["t_ms"].to_numpy() // _DAY_MS
        files = []
        for day in np.unique(day_of).tolist():
            date = datetime.fromtimestamp(day * _DAY_MS / 1000, UTC).date()
            folder = out_dir / date.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            con.register("history_day", history.filter(pa.array(day_of == day)))
            path = folder / HISTORY_FILE
            con.execute(f"COPY ({_HISTORY_SQL}) TO $path (FORMAT json)", {"path": str(path)})
            con.unregister("history_day")
            files.append(path.relative_to(out_dir).as_posix())
        return HistoryWritten(files=tuple(files), events=events)

    def _draw(self, target: _Target) -> pa.Table:
        """The target's history events, one row per order, drawn from its own stream
        (the module docstring says how)."""
        rng = np.random.default_rng([self._seed, HISTORY_STREAM, zlib.crc32(target.key.encode())])
        seen = target.observed()
        n = seen["subject"].size
        buyer = seen["spend"] > 0
        _, variant = np.unique(seen["variant"], return_inverse=True)
        rate = (np.bincount(variant, weights=buyer) / np.bincount(variant))[variant]
        propensity = np.where(buyer, rng.random(n) * rate, rate + rng.random(n) * (1 - rate))
        habitual = rng.random(n) < HABITUAL_SHARE
        bought_before = np.where(habitual, propensity, rng.random(n)) < buyer.mean()
        own_value = seen["spend"] / np.maximum(seen["orders"], 1)
        resampled = rng.choice(own_value[buyer], n) if buyer.any() else np.zeros(n)
        order_value = np.where(buyer, own_value, resampled)
        lookback_ms = round(target.metric.cuped.lookback_days * _DAY_MS)
        # [lo, hi): inside the lookback (x counts ts >= exposure − lookback) and before
        # the window; empty for a subject exposed a whole lookback after the start.
        lo = seen["first_ms"] - lookback_ms + 1
        hi = np.minimum(seen["first_ms"], target.start_ms)
        count = np.where(bought_before & (hi > lo), 1 + rng.poisson(EXTRA_ORDERS_MEAN, n), 0)
        owner = np.repeat(np.arange(n), count)
        size = owner.size
        amount = order_value[owner] * np.exp(rng.normal(0.0, ORDER_VALUE_SIGMA, size))
        t_ms = lo[owner] + (rng.random(size) * (hi - lo)[owner]).astype(np.int64)
        order_no = np.arange(size) - np.repeat(np.cumsum(count) - count, count)
        by_time = np.argsort(t_ms, kind="stable")
        return pa.table(
            {
                "seed": np.full(size, self._seed, dtype=np.int64),
                "experiment": np.full(size, target.key),
                "subject": seen["subject"][owner][by_time],
                "order_no": order_no[by_time],
                "t_ms": t_ms[by_time],
                "event": np.full(size, target.metric.event),
                "property": np.full(size, target.metric.property),
                "amount": np.maximum(np.round(amount, 2), 0.01)[by_time],
                "user_agent": np.array(self._user_agents)[seen["user_agent"][owner][by_time]],
            }
        )


# One JSON object per history order, in the landing schema: the subject's distinct id as
# the generator renders it, a session of the order's own, no flag properties.
_HISTORY_SQL = """
SELECT event,
    uuid_of(seed || ':subject:' || experiment || ':' || subject) AS distinct_id,
    strftime(epoch_ms(t_ms), '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp,
    json_object(
        'session_id',
        uuid_of(seed || ':history-session:' || experiment || ':' || subject || ':' || order_no),
        '$user_agent', user_agent,
        property, amount::DECIMAL(12, 2)
    ) AS properties,
    uuid_of(seed || ':history:' || experiment || ':' || subject || ':' || order_no) AS event_id
FROM history_day
ORDER BY t_ms, experiment, subject, order_no
"""
