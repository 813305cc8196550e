SELECT
  :key,
  group_type,
  group_key,
  variant,
  first_ts,
  FROM_UTC_TIMESTAMP(first_ts, :timezone),
  members
FROM group_exposure_classes
WHERE
  reason IS NULL
