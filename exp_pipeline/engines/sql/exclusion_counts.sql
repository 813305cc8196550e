-- Excluded subjects per reason. Parameters: $key.
SELECT reason, subjects FROM exposure_exclusions WHERE experiment_key = $key
