-- Exposed subjects per variant. Parameters: $key.
SELECT variant, count(*) FROM exposures WHERE experiment_key = $key GROUP BY variant
