SELECT
  metric_key,
  variant,
  step,
  subjects
FROM funnel_metrics
WHERE
  experiment_key = :key
ORDER BY
  metric_key NULLS LAST,
  variant NULLS LAST,
  step NULLS LAST
