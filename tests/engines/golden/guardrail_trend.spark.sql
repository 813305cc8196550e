SELECT
  variant,
  CAST(COUNT(*) FILTER(WHERE
    event = :event) AS DOUBLE),
  CAST(COUNT(DISTINCT distinct_id) AS DOUBLE)
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
GROUP BY
  variant
