-- Exposed groups per group type and variant. Parameters: $key.
SELECT group_type, variant, count(*)
FROM group_exposures
WHERE experiment_key = $key
GROUP BY group_type, variant
