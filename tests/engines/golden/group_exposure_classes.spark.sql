WITH members AS (
  SELECT
    x.distinct_id,
    x.variant,
    x.first_exposure_utc AS first_ts,
    MIN(NULLIF(GET_JSON_OBJECT(e.properties, :group_path), '')) AS group_key
  FROM exposures AS x
  JOIN flag_assignments AS f
    ON f.distinct_id = x.distinct_id
    AND f.flag_key = :flag
    AND f.ts = x.first_exposure_utc
    AND f.source = x.exposure_source
    AND f.variant = x.variant
    AND NOT f.is_bot
    AND NOT f.is_dnt
  JOIN events AS e
    ON e.event_uid = f.event_uid
  WHERE
    x.experiment_key = :key
  GROUP BY
    x.distinct_id,
    x.variant,
    x.first_exposure_utc
), per_group AS (
  /* min <> max finds groups whose members saw different variants on every engine. */
  SELECT
    group_key,
    MIN(variant) AS min_variant,
    MAX(variant) AS max_variant,
    MIN(first_ts) AS first_ts,
    COUNT(*) AS members
  FROM members
  WHERE
    NOT group_key IS NULL
  GROUP BY
    group_key
)
SELECT
  :group_type AS group_type,
  group_key,
  CASE WHEN min_variant <> max_variant THEN 'multiple_variants' END AS reason,
  min_variant AS variant,
  first_ts,
  members
FROM per_group
UNION ALL
SELECT
  :group_type,
  NULL,
  'no_group',
  NULL,
  NULL,
  COUNT(*)
FROM members
WHERE
  group_key IS NULL
HAVING
  COUNT(*) > 0
