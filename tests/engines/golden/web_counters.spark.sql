SELECT
  x.variant,
  COUNT(DISTINCT x.distinct_id) AS exposed,
  COUNT(e.event_uid) FILTER(WHERE
    e.event = 'impression') AS impressions,
  COUNT(e.event_uid) FILTER(WHERE
    e.event = 'cta_click') AS cta_clicks,
  COUNT(e.event_uid) FILTER(WHERE
    e.event = 'form_start') AS form_starts,
  COUNT(e.event_uid) FILTER(WHERE
    e.event = 'form_submit') AS form_submits,
  COUNT(e.event_uid) FILTER(WHERE
    e.event = 'conversion') AS conversions,
  COUNT(DISTINCT e.session_id) AS unique_sessions,
  COALESCE(
    SUM(TRY_CAST(GET_JSON_OBJECT(e.properties, '$.value') AS DOUBLE)) FILTER(WHERE
      e.event = 'conversion'),
    0
  ) AS conversion_value_total
FROM exposures AS x
LEFT JOIN analysis_events AS e
  ON e.distinct_id = x.distinct_id AND e.ts >= :start AND e.ts <= :end
WHERE
  x.experiment_key = :key
GROUP BY
  x.variant
ORDER BY
  x.variant NULLS LAST
