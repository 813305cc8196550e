SELECT
  distinct_id AS unit_id,
  variant
FROM exposures
WHERE
  experiment_key = :key
