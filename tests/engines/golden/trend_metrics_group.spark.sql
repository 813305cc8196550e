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
    CAST(FROM_UTC_TIMESTAMP(ts, :timezone) AS DATE) AS day,
    variant,
    unit_id
  FROM (
    SELECT
      x.group_key AS unit_id,
      x.variant,
      e.event,
      e.ts,
      e.event_uid,
      e.properties
    FROM analysis_events AS e
    JOIN group_exposures AS x
      ON x.group_key = NULLIF(GET_JSON_OBJECT(e.properties, :group_path), '')
      AND x.experiment_key = :key
      AND x.group_type = :group_type
    WHERE
      e.ts >= :start AND e.ts <= :end
  ) AS s
  WHERE
    event = :event
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
