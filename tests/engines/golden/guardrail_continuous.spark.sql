SELECT
  w.look,
  w.variant,
  COALESCE(
    CAST(SUM(
      CASE
        WHEN w.event = w.event_a
        THEN CAST(TRY_CAST(GET_JSON_OBJECT(e.properties, :path) AS DOUBLE) AS DECIMAL(38, 9))
      END
    ) AS DOUBLE),
    0
  ),
  CAST(COUNT(DISTINCT w.distinct_id) AS DOUBLE)
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
JOIN events AS e
  ON e.event_uid = w.event_uid
GROUP BY
  w.look,
  w.variant
