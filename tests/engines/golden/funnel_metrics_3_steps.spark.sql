WITH variants AS (
  SELECT
    variant_key AS variant
  FROM experiment_variants
  WHERE
    experiment_key = :key
), steps AS (
  SELECT
    *
  FROM VALUES
    (1, :step1),
    (2, :step2),
    (3, :step3) AS s(step, step_event)
), reached AS (
  SELECT
    variant,
    funnel_step,
    COUNT(*) AS subjects
  FROM conversions
  WHERE
    experiment_key = :key AND metric_key = :metric
  GROUP BY
    variant,
    funnel_step
)
SELECT
  :key,
  :metric,
  v.variant,
  s.step,
  s.step_event,
  COALESCE(SUM(r.subjects), 0)
FROM variants AS v
CROSS JOIN steps AS s
LEFT JOIN reached AS r
  ON r.variant = v.variant AND r.funnel_step >= s.step
GROUP BY
  v.variant,
  s.step,
  s.step_event
