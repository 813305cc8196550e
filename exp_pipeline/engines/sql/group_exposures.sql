-- Exposed groups of the staged `group_exposure_classes`, with the wall-clock time of their
-- first exposure in the experiment's zone. Parameters: $key, $timezone.
SELECT $key, group_type, group_key, variant, first_ts, first_ts AT TIME ZONE $timezone, members
FROM group_exposure_classes
WHERE reason IS NULL
