SELECT
  look,
  variant,
  CAST(COUNT(*) FILTER(WHERE
    event = event_a) AS DOUBLE),
  CAST(COUNT(DISTINCT distinct_id) AS DOUBLE)
FROM (
  SELECT
    w.look,
    w.event_a,
    w.event_b,
    f.variant,
    f.event,
    f.distinct_id,
    f.event_uid
  FROM guardrail_windows AS w
  JOIN flag_assignments AS f
    ON f.flag_key = w.flag
    AND f.source = 'property'
    AND NOT f.is_bot
    AND NOT f.is_dnt
    AND f.ts >= w.window_start
    AND f.ts <= w.window_end
) AS w
GROUP BY
  look,
  variant
