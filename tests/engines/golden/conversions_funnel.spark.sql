WITH ev AS (
  SELECT
    *
  FROM (
    SELECT
      e.distinct_id AS unit_id,
      x.variant,
      e.event,
      e.ts,
      e.event_uid,
      e.properties
    FROM analysis_events AS e
    JOIN exposures AS x
      ON x.distinct_id = e.distinct_id AND x.experiment_key = :key
    WHERE
      e.ts >= :start AND e.ts <= :end
  ) AS s
  WHERE
    event IN (:step1, :step2, :step3)
), chain1 AS (
  SELECT
    unit_id,
    ts AS start_ts,
    event_uid AS start_uid,
    ts AS t,
    event_uid AS u
  FROM (
    SELECT
      *,
      ROW_NUMBER() OVER (PARTITION BY unit_id ORDER BY ts NULLS LAST, event_uid NULLS LAST) AS rn
    FROM ev
    WHERE
      event = :step1
  ) AS s
  WHERE
    rn = 1
), chain2 AS (
  SELECT
    unit_id,
    start_ts,
    start_uid,
    t,
    u
  FROM (
    SELECT
      p.unit_id,
      p.start_ts,
      p.start_uid,
      e.ts AS t,
      e.event_uid AS u,
      ROW_NUMBER() OVER (
        PARTITION BY p.unit_id, p.start_uid
        ORDER BY e.ts NULLS LAST, e.event_uid NULLS LAST
      ) AS rn
    FROM chain1 AS p
    JOIN ev AS e
      ON e.unit_id = p.unit_id
      AND e.event = :step2
      AND (
        e.ts > p.t OR (
          e.ts = p.t AND e.event_uid > p.u
        )
      )
  ) AS s
  WHERE
    rn = 1
), chain3 AS (
  SELECT
    unit_id,
    start_ts,
    start_uid,
    t,
    u
  FROM (
    SELECT
      p.unit_id,
      p.start_ts,
      p.start_uid,
      e.ts AS t,
      e.event_uid AS u,
      ROW_NUMBER() OVER (
        PARTITION BY p.unit_id, p.start_uid
        ORDER BY e.ts NULLS LAST, e.event_uid NULLS LAST
      ) AS rn
    FROM chain2 AS p
    JOIN ev AS e
      ON e.unit_id = p.unit_id
      AND e.event = :step3
      AND (
        e.ts > p.t OR (
          e.ts = p.t AND e.event_uid > p.u
        )
      )
  ) AS s
  WHERE
    rn = 1
), starts AS (
  SELECT
    c1.unit_id,
    1 + CASE WHEN c2.t IS NULL THEN 0 ELSE 1 END + CASE WHEN c3.t IS NULL THEN 0 ELSE 1 END AS reached,
    c3.t AS completed_at
  FROM chain1 AS c1
  LEFT JOIN chain2 AS c2
    ON c2.unit_id = c1.unit_id AND c2.start_uid = c1.start_uid
  LEFT JOIN chain3 AS c3
    ON c3.unit_id = c1.unit_id AND c3.start_uid = c1.start_uid
), per_unit AS (
  SELECT
    unit_id,
    MAX(reached) AS reached,
    MIN(completed_at) AS completed_at
  FROM starts
  GROUP BY
    unit_id
), counts AS (
  SELECT
    unit_id,
    COUNT(*) AS n
  FROM ev
  GROUP BY
    unit_id
)
SELECT
  :key,
  :metric,
  x.unit_id,
  x.variant,
  pu.completed_at,
  COALESCE(c.n, 0),
  CAST(NULL AS DOUBLE),
  CAST(NULL AS BIGINT),
  COALESCE(pu.reached, 0)
FROM (
  SELECT
    distinct_id AS unit_id,
    variant
  FROM exposures
  WHERE
    experiment_key = :key
) AS x
LEFT JOIN per_unit AS pu
  ON pu.unit_id = x.unit_id
LEFT JOIN counts AS c
  ON c.unit_id = x.unit_id
