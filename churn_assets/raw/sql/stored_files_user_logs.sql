-- The window's stored user_logs rows per month and landing file they came from.
CREATE OR REPLACE TEMP TABLE stored_files AS
SELECT date_trunc('month', date)::DATE AS month, source_file, count(*) AS rows
FROM user_logs
WHERE date >= $window_start AND date < $window_end
GROUP BY ALL;
