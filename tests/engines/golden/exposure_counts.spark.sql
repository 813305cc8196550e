SELECT
  variant,
  COUNT(*)
FROM exposures
WHERE
  experiment_key = :key
GROUP BY
  variant
