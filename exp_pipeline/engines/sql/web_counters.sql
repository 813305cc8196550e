-- The classic web counters per variant over the exposed subjects' analysis events inside
-- the window (web_counters.py names the events). Parameters: $key, $start, $end.
SELECT x.variant,
       count(DISTINCT x.distinct_id) AS exposed,
       count(e.event_uid) FILTER (WHERE e.event = 'impression') AS impressions,
       count(e.event_uid) FILTER (WHERE e.event = 'cta_click') AS cta_clicks,
       count(e.event_uid) FILTER (WHERE e.event = 'form_start') AS form_starts,
       count(e.event_uid) FILTER (WHERE e.event = 'form_submit') AS form_submits,
       count(e.event_uid) FILTER (WHERE e.event = 'conversion') AS conversions,
       count(DISTINCT e.session_id) AS unique_sessions,
       coalesce(sum(TRY_CAST(e.properties ->> '$.value' AS DOUBLE))
                    FILTER (WHERE e.event = 'conversion'), 0) AS conversion_value_total
FROM exposures x
LEFT JOIN analysis_events e
  ON e.distinct_id = x.distinct_id AND e.ts >= $start AND e.ts <= $end
WHERE x.experiment_key = $key
GROUP BY x.variant
ORDER BY x.variant
