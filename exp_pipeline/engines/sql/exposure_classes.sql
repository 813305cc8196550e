-- Every subject the experiment concerns, once: exposed (reason NULL, with its first-touch
-- variant, time and source) or excluded under the first reason that applies.
-- Parameters: $key, $flag, $start, $end (UTC instants, converted in Python).
WITH signals AS (
    SELECT distinct_id, variant, ts, source, is_bot, is_dnt, forced,
           ts >= $start AND ts <= $end AS in_window
    FROM flag_assignments
    WHERE flag_key = $flag
), counted AS (
    SELECT * FROM signals WHERE in_window AND NOT is_bot AND NOT is_dnt
), per_subject AS (
    -- min <> max finds multi-variant subjects the same way on every engine; the least
    -- (ts, source, variant) is the first touch.
    SELECT distinct_id, min(variant) AS min_variant, max(variant) AS max_variant,
           bool_or(forced) AS forced,
           min(struct_pack(ts := ts, source := source, variant := variant)) AS first_touch
    FROM counted GROUP BY distinct_id
), defined AS (
    SELECT variant_key FROM experiment_variants WHERE experiment_key = $key
), classified AS (
    -- A join, not `NOT IN (subquery)` inside CASE: Spark allows subqueries only in filters.
    SELECT p.distinct_id,
           -- A QA override is never a randomly assigned subject, whatever it was served.
           CASE WHEN p.forced THEN 'forced'
                WHEN p.min_variant <> p.max_variant THEN 'multiple_variants'
                WHEN d.variant_key IS NULL THEN 'unknown_variant'
           END AS reason,
           p.min_variant AS variant, p.first_touch.ts AS first_ts,
           p.first_touch.source AS source
    FROM per_subject p
    LEFT JOIN defined d ON d.variant_key = p.min_variant
), uncounted AS (
    SELECT distinct_id,
           CASE WHEN bool_or(in_window AND is_bot) THEN 'bot'
                WHEN bool_or(in_window AND is_dnt) THEN 'dnt'
                ELSE 'out_of_window'
           END AS reason
    FROM signals
    WHERE distinct_id NOT IN (SELECT distinct_id FROM per_subject)
    GROUP BY distinct_id
), no_flag AS (
    SELECT distinct_id, 'no_flag' AS reason
    FROM (SELECT DISTINCT distinct_id FROM analysis_events WHERE ts >= $start AND ts <= $end)
         AS active
    WHERE distinct_id NOT IN (SELECT distinct_id FROM signals)
)
SELECT distinct_id, reason, variant, first_ts, source FROM classified
UNION ALL SELECT distinct_id, reason, NULL, NULL, NULL FROM uncounted
UNION ALL SELECT distinct_id, reason, NULL, NULL, NULL FROM no_flag
