-- The window's months of transactions (by transaction_date): the rows of the files this load
-- replaces (replaced_files: every file of the table in the landing folder, whether or not it
-- still holds rows of these months) are deleted, and the landing rows inserted as they stream
-- from the files. Rows of a file that has left the landing folder stay until it is replaced or
-- retracted; rows stored before files were recorded (no source_file) are rebuilt. A row whose transaction date is not a real day
-- belongs to no month: it is left out and counted (raw_loads.undated_rows). An unparseable
-- expiry becomes NULL, counted by the nulls check; features place the user by their latest
-- transaction with a valid expiry, so the user is not dropped from a cohort. Exact duplicates
-- are removed afterwards by dedupe_transactions.sql, inside the same transaction.
DELETE FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end
  AND (source_file IS NULL OR source_file IN (SELECT source_file FROM replaced_files));
INSERT INTO transactions
SELECT
    msno, payment_method_id, payment_plan_days, plan_list_price, actual_amount_paid,
    is_auto_renew,
    try_strptime(CAST(transaction_date AS VARCHAR), '%Y%m%d')::DATE,
    try_strptime(CAST(membership_expire_date AS VARCHAR), '%Y%m%d')::DATE,
    is_cancel,
    regexp_extract(source_file, '[^/]+$') AS source_file
FROM landing_source
WHERE transaction_date >= $window_start_int AND transaction_date < $window_end_int
  AND try_strptime(CAST(transaction_date AS VARCHAR), '%Y%m%d') IS NOT NULL;
