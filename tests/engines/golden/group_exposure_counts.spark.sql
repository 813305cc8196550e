SELECT
  group_type,
  variant,
  COUNT(*)
FROM group_exposures
WHERE
  experiment_key = :key
GROUP BY
  group_type,
  variant
