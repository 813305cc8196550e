WITH subjects AS (
  SELECT
    l.look,
    f.distinct_id,
    MIN(f.variant) AS lo,
    MAX(f.variant) AS hi,
    MAX(f.ts) AS newest
  FROM guardrail_looks AS l
  JOIN flag_assignments AS f
    ON f.flag_key = l.flag
    AND NOT f.is_bot
    AND NOT f.is_dnt
    AND f.ts >= l.window_start
    AND f.ts <= l.window_end
  GROUP BY
    l.look,
    f.distinct_id
)
SELECT
  look,
  lo,
  COUNT(*) FILTER(WHERE
    lo = hi),
  COUNT(*) FILTER(WHERE
    lo <> hi),
  MAX(newest)
FROM subjects
GROUP BY
  look,
  lo
