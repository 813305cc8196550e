-- Distinct subjects with a `$feature_flag_called` event per variant in the window, every
-- defined variant included. Parameters: $key, $flag, $start, $end.
WITH called AS (
    SELECT variant, count(DISTINCT distinct_id) AS subjects
    FROM flag_assignments
    WHERE flag_key = $flag AND source = 'flag_called'
      AND ts >= $start AND ts <= $end AND NOT is_bot AND NOT is_dnt
    GROUP BY variant
)
SELECT $key, v.variant_key, coalesce(c.subjects, 0)
FROM experiment_variants v
LEFT JOIN called c ON c.variant = v.variant_key
WHERE v.experiment_key = $key
