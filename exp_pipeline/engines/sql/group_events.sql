-- Analysis events (no bots, no Do-Not-Track) inside the window that name an exposed group
-- of type $group_type in their own `$groups`, with the group as unit and its variant
-- (PostHog's attribution: any member's event counts for the group it names).
-- Parameters: $key, $start, $end, $group_type, $group_path.
SELECT x.group_key AS unit_id, x.variant, e.event, e.ts, e.event_uid, e.properties
FROM analysis_events e
JOIN group_exposures x
  ON x.group_key = nullif(e.properties ->> $group_path, '')
 AND x.experiment_key = $key AND x.group_type = $group_type
WHERE e.ts >= $start AND e.ts <= $end
