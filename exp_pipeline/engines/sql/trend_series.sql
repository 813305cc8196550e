-- Trend values, one row per metric, variant and day. Parameters: $key.
SELECT metric_key, variant, day, event_count, value
FROM trend_metrics
WHERE experiment_key = $key
ORDER BY metric_key, variant, day
