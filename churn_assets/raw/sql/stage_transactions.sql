-- Landing rows of the window [$window_start_int, $window_end_int), exact duplicates folded into
-- one row with their copy count: one scan of the files for the whole window. Transaction dates
-- are built from the YYYYMMDD integers arithmetically (an impossible one fails the load); an
-- unparseable expiry becomes NULL and counts against the schema check.
CREATE OR REPLACE TEMP TABLE staged AS
SELECT
    msno, payment_method_id, payment_plan_days, plan_list_price, actual_amount_paid,
    is_auto_renew,
    make_date(transaction_date // 10000, transaction_date // 100 % 100, transaction_date % 100) AS transaction_date,
    try_strptime(CAST(membership_expire_date AS VARCHAR), '%Y%m%d')::DATE
        AS membership_expire_date,
    is_cancel,
    transaction_date // 100 AS month_tag,
    count(*) AS copies
FROM landing_source
WHERE transaction_date >= $window_start_int AND transaction_date < $window_end_int
GROUP BY ALL;
