-- The window's stored transactions rows per month and landing file they came from.
CREATE OR REPLACE TEMP TABLE stored_files AS
SELECT date_trunc('month', transaction_date)::DATE AS month, source_file, count(*) AS rows
FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end
GROUP BY ALL;
