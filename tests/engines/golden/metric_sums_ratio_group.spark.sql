WITH measured AS (
  SELECT
    s.variant,
    CAST(COALESCE(c.event_count, 0) AS DOUBLE) AS x,
    CAST(COALESCE(c.denominator_count, 0) AS DOUBLE) AS y
  FROM (
    SELECT
      group_key AS unit_id,
      variant
    FROM group_exposures
    WHERE
      experiment_key = :key AND group_type = :group_type
  ) AS s
  LEFT JOIN conversions AS c
    ON c.experiment_key = :key AND c.distinct_id = s.unit_id AND c.metric_key = :metric
), estimated AS (
  SELECT
    x,
    CASE WHEN x = 0 THEN 0 ELSE CAST(FLOOR(LOG(10, ABS(x))) AS INT) END AS guess
  FROM measured
), binned AS (
  /* Spark's log10 is ln(x) / ln(10), which can land just below an exact power of */
  /* ten: the guess is corrected against the power itself, so engines agree. */
  SELECT
    x,
    CASE
      WHEN x = 0
      THEN 0
      WHEN ABS(x) >= POWER(10, guess + 1)
      THEN guess + 1
      WHEN ABS(x) < POWER(10, guess)
      THEN guess - 1
      ELSE guess
    END AS exponent
  FROM estimated
), bins AS (
  SELECT
    exponent,
    CAST(FLOOR(x / POWER(10, exponent - 2)) AS BIGINT) AS mantissa,
    COUNT(*) AS n,
    MAX(x) AS top
  FROM binned
  GROUP BY
    1,
    2
), cumulative AS (
  SELECT
    top,
    SUM(n) OVER (ORDER BY top NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS at_most,
    SUM(n) OVER () AS total
  FROM bins
), quantile AS (
  SELECT
    MIN(top) AS cap
  FROM cumulative
  WHERE
    at_most >= :quantile * total
), capped AS (
  SELECT
    m.variant,
    LEAST(m.x, q.cap) AS x,
    m.y,
    m.x > q.cap AS lowered,
    q.cap
  FROM measured AS m
  CROSS JOIN quantile AS q
)
SELECT
  variant,
  COUNT(*),
  CAST(SUM(CAST(x AS DECIMAL(38, 9))) AS DOUBLE),
  CAST(SUM(CAST(y AS DECIMAL(38, 9))) AS DOUBLE),
  CAST(SUM(CAST(x * x AS DECIMAL(38, 9))) AS DOUBLE),
  CAST(SUM(CAST(y * y AS DECIMAL(38, 9))) AS DOUBLE),
  CAST(SUM(CAST(x * y AS DECIMAL(38, 9))) AS DOUBLE),
  COUNT(*) FILTER(WHERE
    lowered),
  MAX(cap)
FROM capped
GROUP BY
  variant
