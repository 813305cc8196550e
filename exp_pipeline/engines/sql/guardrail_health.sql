-- Per lowest variant seen: subjects with one variant and subjects with several (min <> max).
-- Parameters: $flag, $start, $end.
WITH subjects AS (
    SELECT distinct_id, min(variant) AS lo, max(variant) AS hi
    FROM flag_assignments
    WHERE flag_key = $flag AND NOT is_bot AND NOT is_dnt AND ts >= $start AND ts <= $end
    GROUP BY distinct_id
)
SELECT lo, count(*) FILTER (WHERE lo = hi), count(*) FILTER (WHERE lo <> hi)
FROM subjects
GROUP BY lo
