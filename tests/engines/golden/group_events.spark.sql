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
