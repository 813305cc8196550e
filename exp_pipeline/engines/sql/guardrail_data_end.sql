-- The freshest analysable flag signal of the experiment, up to $cap.
-- Parameters: $flag, $start, $cap.
SELECT max(ts)
FROM flag_assignments
WHERE flag_key = $flag AND NOT is_bot AND NOT is_dnt AND ts >= $start AND ts <= $cap
