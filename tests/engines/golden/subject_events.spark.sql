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
