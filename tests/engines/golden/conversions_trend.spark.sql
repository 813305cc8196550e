WITH per_unit AS (
  SELECT
    unit_id,
    MIN(ts) AS first_conversion_utc,
    COUNT(*) AS event_count,
    CAST(NULL AS DOUBLE) AS value_sum,
    CAST(NULL AS BIGINT) AS denominator_count
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
    event = :event
  GROUP BY
    unit_id
)
SELECT
  :key,
  :metric,
  x.unit_id,
  x.variant,
  p.first_conversion_utc,
  p.event_count,
  p.value_sum,
  p.denominator_count,
  CAST(NULL AS INT)
FROM (
  SELECT
    distinct_id AS unit_id,
    variant
  FROM exposures
  WHERE
    experiment_key = :key
) AS x
JOIN per_unit AS p
  ON p.unit_id = x.unit_id
