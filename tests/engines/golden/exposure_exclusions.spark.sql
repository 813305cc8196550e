SELECT
  :key,
  reason,
  COUNT(*)
FROM exposure_classes
WHERE
  NOT reason IS NULL
GROUP BY
  reason
