-- Exposed subjects of the staged `exposure_classes`; the local time is the wall clock of
-- the experiment's zone (AT TIME ZONE: DuckDB's timezone(), Spark's from_utc_timestamp).
-- Parameters: $key, $timezone.
SELECT $key, distinct_id, variant, first_ts, first_ts AT TIME ZONE $timezone, source
FROM exposure_classes
WHERE reason IS NULL
