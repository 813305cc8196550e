WITH subjects AS (
  SELECT
    distinct_id,
    MIN(variant) AS lo,
    MAX(variant) AS hi
  FROM flag_assignments
  WHERE
    flag_key = :flag AND NOT is_bot AND NOT is_dnt AND ts >= :start AND ts <= :end
  GROUP BY
    distinct_id
)
SELECT
  lo,
  COUNT(*) FILTER(WHERE
    lo = hi),
  COUNT(*) FILTER(WHERE
    lo <> hi)
FROM subjects
GROUP BY
  lo
