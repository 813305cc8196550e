WITH per_unit AS (
  SELECT
    unit_id,
    MIN(ts) AS first_conversion_utc,
    COUNT(*) AS event_count,
    CAST(SUM(CAST(TRY_CAST(GET_JSON_OBJECT(properties, :path) AS DOUBLE) AS DECIMAL(38, 9))) AS DOUBLE) AS value_sum,
    CAST(NULL AS BIGINT) AS denominator_count
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
    group_key AS unit_id,
    variant
  FROM group_exposures
  WHERE
    experiment_key = :key AND group_type = :group_type
) AS x
JOIN per_unit AS p
  ON p.unit_id = x.unit_id
