SELECT
  CAST(FROM_UTC_TIMESTAMP(e.ts, :timezone) AS DATE) AS day,
  f.variant,
  e.distinct_id AS unit_id
FROM analysis_events AS e
JOIN flag_assignments AS f
  ON f.event_uid = e.event_uid AND f.flag_key = :flag AND f.source = 'property'
WHERE
  e.event = :event AND e.ts >= :start AND e.ts <= :end
