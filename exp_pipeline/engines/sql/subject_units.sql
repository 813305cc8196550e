-- The experiment's exposed subjects as analysis units. Parameters: $key.
SELECT distinct_id AS unit_id, variant
FROM exposures
WHERE experiment_key = $key
