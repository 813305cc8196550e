-- Analysis events (no bots, no Do-Not-Track) of the experiment's exposed subjects inside
-- its window, with the subject as unit and its variant. Parameters: $key, $start, $end.
SELECT e.distinct_id AS unit_id, x.variant, e.event, e.ts, e.event_uid, e.properties
FROM analysis_events e
JOIN exposures x ON x.distinct_id = e.distinct_id AND x.experiment_key = $key
WHERE e.ts >= $start AND e.ts <= $end
