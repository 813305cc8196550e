-- Excluded units of the staged `group_exposure_classes` by reason: groups
-- (`multiple_variants`) or exposed members without a group (`no_group`, one row holding
-- their count). Parameters: $key.
SELECT $key, group_type, reason, sum(CASE WHEN group_key IS NULL THEN members ELSE 1 END)
FROM group_exposure_classes
WHERE reason IS NOT NULL
GROUP BY group_type, reason
