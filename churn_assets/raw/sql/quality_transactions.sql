-- Quality numbers of one month of transactions.
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE msno IS NULL OR msno = '' OR membership_expire_date IS NULL)
        AS invalid_key_rows,
    count(*) FILTER (WHERE payment_plan_days IS NULL) AS null_payment_plan_days,
    count(*) FILTER (WHERE is_auto_renew IS NULL) AS null_is_auto_renew,
    count(*) FILTER (WHERE is_cancel IS NULL) AS null_is_cancel,
    count(*) FILTER (WHERE actual_amount_paid IS NULL) AS null_actual_amount_paid,
    count(*) FILTER (WHERE payment_plan_days = 0) AS zero_day_plans,
    count(*) FILTER (WHERE membership_expire_date < transaction_date) AS expiry_before_transaction
FROM transactions
WHERE transaction_date >= $month_start AND transaction_date < $month_end;
