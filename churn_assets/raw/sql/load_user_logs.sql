-- The window's months of daily listening rows: the rows of the files this load replaces
-- (replaced_files, as for transactions) are deleted and the landing rows inserted as they stream
-- from the files (no staging copy); rows of a file that has left the landing folder stay. A row whose date is not a real day
-- (20160231) belongs to no month: it is left out and counted (raw_loads.undated_rows, the
-- schema check's metadata). Exact duplicates are removed afterwards by dedupe_user_logs.sql,
-- inside the same transaction.
DELETE FROM user_logs
WHERE date >= $window_start AND date < $window_end
  AND (source_file IS NULL OR source_file IN (SELECT source_file FROM replaced_files));
INSERT INTO user_logs
SELECT
    msno,
    try_strptime(CAST(date AS VARCHAR), '%Y%m%d')::DATE AS date,
    num_25, num_50, num_75, num_985, num_100, num_unq, total_secs,
    regexp_extract(source_file, '[^/]+$') AS source_file
FROM landing_source
WHERE date >= $window_start_int AND date < $window_end_int
  AND try_strptime(CAST(date AS VARCHAR), '%Y%m%d') IS NOT NULL;
