-- Flagged, analysable events of every guardrail window, with the variant they carry and
-- the window's metric events (event_a, event_b). Reads the staged relation
-- guardrail_windows(look, flag, window_start, window_end, event_a, event_b).
SELECT w.look, w.event_a, w.event_b, f.variant, f.event, f.distinct_id, f.event_uid
FROM guardrail_windows w
JOIN flag_assignments f
  ON f.flag_key = w.flag AND f.source = 'property' AND NOT f.is_bot AND NOT f.is_dnt
 AND f.ts >= w.window_start AND f.ts <= w.window_end
