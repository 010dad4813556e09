-- Quality numbers of each month of transactions in the window (stored rows;
-- the dedupe step counts the duplicates).
WITH rows AS (
    SELECT * FROM transactions
    WHERE transaction_date >= $window_start AND transaction_date < $window_end
)
SELECT
    date_trunc('month', r.transaction_date)::DATE AS month,
    count(*) AS rows,
    count(*) FILTER (WHERE r.msno IS NULL OR r.msno = '') AS invalid_key_rows,
    count(*) FILTER (WHERE r.membership_expire_date IS NULL) AS null_membership_expire_date,
    count(*) FILTER (WHERE r.payment_plan_days IS NULL) AS null_payment_plan_days,
    count(*) FILTER (WHERE r.is_auto_renew IS NULL) AS null_is_auto_renew,
    count(*) FILTER (WHERE r.is_cancel IS NULL) AS null_is_cancel,
    count(*) FILTER (WHERE r.actual_amount_paid IS NULL) AS null_actual_amount_paid,
    count(*) FILTER (WHERE r.payment_plan_days = 0) AS range_zero_day_plans,
    count(*) FILTER (WHERE r.payment_plan_days < 0 OR r.payment_plan_days > 450)
        AS range_absurd_plan_days,
    count(*) FILTER (WHERE r.plan_list_price < 0 OR r.actual_amount_paid < 0
                        OR r.plan_list_price > 10000 OR r.actual_amount_paid > 10000)
        AS range_absurd_prices,
    count(*) FILTER (WHERE r.membership_expire_date < r.transaction_date)
        AS range_expiry_before_transaction,
    count(*) FILTER (WHERE r.is_auto_renew NOT IN (0, 1) OR r.is_cancel NOT IN (0, 1))
        AS range_invalid_flags,
    count(*) FILTER (WHERE m.msno IS NULL) AS unknown_user_rows
FROM rows r
LEFT JOIN (SELECT DISTINCT msno FROM members) m ON m.msno = r.msno
GROUP BY ALL
ORDER BY month;
