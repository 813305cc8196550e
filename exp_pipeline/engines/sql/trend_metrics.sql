-- A trend's events per variant and calendar day of the experiment's zone, every day of the
-- window (zeros included). An event counts for the variant its `$feature/<flag>` carries.
-- Parameters: $key, $flag, $start, $end, $metric, $event, $math, $timezone,
-- $first_day, $last_day (the window's first and last local days, computed in Python).
WITH variants AS (
    SELECT variant_key AS variant FROM experiment_variants WHERE experiment_key = $key
), days AS (
    SELECT CAST(d AS DATE) AS day
    FROM (
        SELECT unnest(generate_series(CAST($first_day AS DATE), CAST($last_day AS DATE),
                                      INTERVAL 1 DAY)) AS d
    ) s
), carrying AS (
    SELECT CAST(e.ts AT TIME ZONE $timezone AS DATE) AS day, f.variant, e.distinct_id
    FROM analysis_events e
    JOIN flag_assignments f
      ON f.event_uid = e.event_uid AND f.flag_key = $flag AND f.source = 'property'
    WHERE e.event = $event AND e.ts >= $start AND e.ts <= $end
), daily AS (
    SELECT day, variant, count(*) AS event_count, count(DISTINCT distinct_id) AS actors
    FROM carrying GROUP BY day, variant
)
SELECT $key, $metric, v.variant, d.day,
       coalesce(a.event_count, 0), coalesce(a.actors, 0),
       CASE WHEN $math = 'avg_count_per_actor'
            THEN coalesce(a.event_count / nullif(a.actors, 0), 0)
            ELSE coalesce(a.event_count, 0) END
FROM variants v CROSS JOIN days d
LEFT JOIN daily a ON a.day = d.day AND a.variant = v.variant
