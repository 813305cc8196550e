SELECT
  group_type,
  reason,
  units
FROM group_exposure_exclusions
WHERE
  experiment_key = :key
