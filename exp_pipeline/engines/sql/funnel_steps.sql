-- Funnel step counts, one row per metric, variant and step. Parameters: $key.
SELECT metric_key, variant, step, subjects
FROM funnel_metrics
WHERE experiment_key = $key
ORDER BY metric_key, variant, step
