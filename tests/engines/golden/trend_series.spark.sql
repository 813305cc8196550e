SELECT
  metric_key,
  variant,
  day,
  event_count,
  value
FROM trend_metrics
WHERE
  experiment_key = :key
ORDER BY
  metric_key NULLS LAST,
  variant NULLS LAST,
  day NULLS LAST
