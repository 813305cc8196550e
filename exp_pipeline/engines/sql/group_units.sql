-- The experiment's exposed groups of type $group_type as analysis units.
-- Parameters: $key, $group_type.
SELECT group_key AS unit_id, variant
FROM group_exposures
WHERE experiment_key = $key AND group_type = $group_type
