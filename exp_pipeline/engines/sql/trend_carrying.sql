-- A trend's metric events in the window that carry a variant (`$feature/<flag>`), per
-- calendar day of the experiment's zone, with the subject as unit.
-- Parameters: $flag, $start, $end, $event, $timezone.
SELECT CAST(e.ts AT TIME ZONE $timezone AS DATE) AS day, f.variant, e.distinct_id AS unit_id
FROM analysis_events e
JOIN flag_assignments f
  ON f.event_uid = e.event_uid AND f.flag_key = $flag AND f.source = 'property'
WHERE e.event = $event AND e.ts >= $start AND e.ts <= $end
