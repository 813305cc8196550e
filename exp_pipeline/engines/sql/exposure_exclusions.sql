-- Excluded subjects of the staged `exposure_classes`, counted by reason. Parameters: $key.
SELECT $key, reason, count(*)
FROM exposure_classes
WHERE reason IS NOT NULL
GROUP BY reason
