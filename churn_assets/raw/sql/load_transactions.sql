-- One month of transactions (by transaction_date), replacing that month; exact duplicates dropped.
DELETE FROM transactions WHERE transaction_date >= $month_start AND transaction_date < $month_end;
INSERT INTO transactions
SELECT DISTINCT
    msno, payment_method_id, payment_plan_days, plan_list_price, actual_amount_paid,
    is_auto_renew,
    strptime(CAST(transaction_date AS VARCHAR), '%Y%m%d')::DATE AS transaction_date,
    try_strptime(CAST(membership_expire_date AS VARCHAR), '%Y%m%d')::DATE,
    is_cancel
FROM landing_source
WHERE transaction_date >= $month_start_int AND transaction_date < $month_end_int;
