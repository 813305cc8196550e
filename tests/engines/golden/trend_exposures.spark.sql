WITH called AS (
  SELECT
    variant,
    COUNT(DISTINCT distinct_id) AS subjects
  FROM flag_assignments
  WHERE
    flag_key = :flag
    AND source = 'flag_called'
    AND ts >= :start
    AND ts <= :end
    AND NOT is_bot
    AND NOT is_dnt
  GROUP BY
    variant
)
SELECT
  :key,
  v.variant_key,
  COALESCE(c.subjects, 0)
FROM experiment_variants AS v
LEFT JOIN called AS c
  ON c.variant = v.variant_key
WHERE
  v.experiment_key = :key
