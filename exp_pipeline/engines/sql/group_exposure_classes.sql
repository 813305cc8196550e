-- Every group of type $group_type the experiment's exposed subjects belong to, once:
-- exposed (reason NULL, with its variant, first exposure and exposed members) or excluded
-- (`multiple_variants`: members in different variants); plus one `no_group` row counting
-- the exposed members whose exposure event names no group of the type (docs/groups.md).
-- A member's group is the `$groups` entry of the event behind its first-touch signal (the
-- counted signal at its first exposure time and source; the least key on a tie).
-- Parameters: $key, $flag, $group_type, $group_path (json path of $groups.<type>).
WITH members AS (
    SELECT x.distinct_id, x.variant, x.first_exposure_utc AS first_ts,
           min(nullif(e.properties ->> $group_path, '')) AS group_key
    FROM exposures x
    JOIN flag_assignments f
      ON f.distinct_id = x.distinct_id AND f.flag_key = $flag
     AND f.ts = x.first_exposure_utc AND f.source = x.exposure_source
     AND f.variant = x.variant AND NOT f.is_bot AND NOT f.is_dnt
    JOIN events e ON e.event_uid = f.event_uid
    WHERE x.experiment_key = $key
    GROUP BY x.distinct_id, x.variant, x.first_exposure_utc
), per_group AS (
    -- min <> max finds groups whose members saw different variants on every engine.
    SELECT group_key, min(variant) AS min_variant, max(variant) AS max_variant,
           min(first_ts) AS first_ts, count(*) AS members
    FROM members
    WHERE group_key IS NOT NULL
    GROUP BY group_key
)
SELECT $group_type AS group_type, group_key,
       CASE WHEN min_variant <> max_variant THEN 'multiple_variants' END AS reason,
       min_variant AS variant, first_ts, members
FROM per_group
UNION ALL
SELECT $group_type, NULL, 'no_group', NULL, NULL, count(*)
FROM members
WHERE group_key IS NULL
HAVING count(*) > 0
