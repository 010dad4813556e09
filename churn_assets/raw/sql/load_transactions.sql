-- The window's months of transactions (by transaction_date), replacing those months: landing
-- rows inserted as they stream from the files. Transaction dates are built from the YYYYMMDD
-- integers arithmetically (an impossible one fails the load); an unparseable expiry becomes NULL
-- and counts against the schema check. Exact duplicates are removed afterwards by
-- dedupe_transactions.sql, inside the same transaction.
DELETE FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end;
INSERT INTO transactions
SELECT
    msno, payment_method_id, payment_plan_days, plan_list_price, actual_amount_paid,
    is_auto_renew,
    make_date(transaction_date // 10000, transaction_date // 100 % 100, transaction_date % 100),
    try_strptime(CAST(membership_expire_date AS VARCHAR), '%Y%m%d')::DATE,
    is_cancel
FROM landing_source
WHERE transaction_date >= $window_start_int AND transaction_date < $window_end_int;
