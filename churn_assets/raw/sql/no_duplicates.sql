-- No landing file: no duplicates counted, so the quality queries still run (nothing is loaded).
CREATE OR REPLACE TEMP TABLE duplicate_counts AS
SELECT NULL::DATE AS month, 0::BIGINT AS exact_duplicates, 0::BIGINT AS key_duplicates
WHERE false;
