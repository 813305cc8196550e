SELECT
  w.variant,
  COALESCE(
    CAST(SUM(
      CASE
        WHEN w.event = :event
        THEN CAST(TRY_CAST(GET_JSON_OBJECT(e.properties, :path) AS DOUBLE) AS DECIMAL(38, 9))
      END
    ) AS DOUBLE),
    0
  ),
  CAST(COUNT(DISTINCT w.distinct_id) AS DOUBLE)
FROM (
  SELECT
    f.variant,
    f.event,
    f.distinct_id,
    f.event_uid
  FROM flag_assignments AS f
  WHERE
    f.flag_key = :flag
    AND f.source = 'property'
    AND NOT f.is_bot
    AND NOT f.is_dnt
    AND f.ts >= :start
    AND f.ts <= :end
) AS w
JOIN events AS e
  ON e.event_uid = w.event_uid
GROUP BY
  w.variant
