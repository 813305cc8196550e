SELECT
  :key,
  group_type,
  reason,
  SUM(CASE WHEN group_key IS NULL THEN members ELSE 1 END)
FROM group_exposure_classes
WHERE
  NOT reason IS NULL
GROUP BY
  group_type,
  reason
