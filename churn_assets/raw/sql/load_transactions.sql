-- The window's months of transactions (by transaction_date), replacing those months.
DELETE FROM transactions
WHERE transaction_date >= $window_start AND transaction_date < $window_end;
INSERT INTO transactions
SELECT
    msno, payment_method_id, payment_plan_days, plan_list_price, actual_amount_paid,
    is_auto_renew, transaction_date, membership_expire_date, is_cancel
FROM staged;
