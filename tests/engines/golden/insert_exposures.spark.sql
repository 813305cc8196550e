INSERT INTO exposures (
  experiment_key,
  distinct_id,
  variant,
  first_exposure_utc,
  first_exposure_local,
  exposure_source
)
SELECT
  :key,
  distinct_id,
  variant,
  first_ts,
  FROM_UTC_TIMESTAMP(first_ts, :timezone),
  source
FROM exposure_classes
WHERE
  reason IS NULL
