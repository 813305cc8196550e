SELECT
  variant,
  subjects
FROM trend_exposures
WHERE
  experiment_key = :key
