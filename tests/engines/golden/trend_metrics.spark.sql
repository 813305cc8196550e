WITH variants AS (
  SELECT
    variant_key AS variant
  FROM experiment_variants
  WHERE
    experiment_key = :key
), days AS (
  SELECT
    CAST(d AS DATE) AS day
  FROM (
    SELECT
      EXPLODE(SEQUENCE(CAST(:first_day AS DATE), CAST(:last_day AS DATE), INTERVAL '1' DAY)) AS d
  ) AS s
), carrying AS (
  SELECT
    CAST(FROM_UTC_TIMESTAMP(e.ts, :timezone) AS DATE) AS day,
    f.variant,
    e.distinct_id AS unit_id
  FROM analysis_events AS e
  JOIN flag_assignments AS f
    ON f.event_uid = e.event_uid AND f.flag_key = :flag AND f.source = 'property'
  WHERE
    e.event = :event AND e.ts >= :start AND e.ts <= :end
), daily AS (
  SELECT
    day,
    variant,
    COUNT(*) AS event_count,
    COUNT(DISTINCT unit_id) AS actors
  FROM carrying
  GROUP BY
    day,
    variant
)
SELECT
  :key,
  :metric,
  v.variant,
  d.day,
  COALESCE(a.event_count, 0),
  COALESCE(a.actors, 0),
  CASE
    WHEN :math = 'avg_count_per_actor'
    THEN COALESCE(a.event_count / NULLIF(a.actors, 0), 0)
    ELSE COALESCE(a.event_count, 0)
  END
FROM variants AS v
CROSS JOIN days AS d
LEFT JOIN daily AS a
  ON a.day = d.day AND a.variant = v.variant
