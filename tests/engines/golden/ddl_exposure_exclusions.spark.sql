CREATE TABLE IF NOT EXISTS exposure_exclusions (experiment_key STRING NOT NULL, reason STRING NOT NULL, subjects BIGINT NOT NULL) USING parquet PARTITIONED BY (experiment_key)
