-- Excluded units per group type and reason. Parameters: $key.
SELECT group_type, reason, units FROM group_exposure_exclusions WHERE experiment_key = $key
