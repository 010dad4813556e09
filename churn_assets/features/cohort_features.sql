-- Features of cohort $cutoff: users whose membership expiry, as known before $cutoff, falls in
-- [$cutoff, $next_month). Every row read is dated strictly before $cutoff (DESIGN §3).
CREATE OR REPLACE TEMP TABLE cohort_features AS
WITH history AS (
    SELECT * FROM transactions WHERE transaction_date < $cutoff
),
current_txn AS (
    -- The latest transaction per user (ties: the later expiry); an aggregate, not a window.
    SELECT unnest(arg_max(h, (h.transaction_date, h.membership_expire_date)))
    FROM history h
    GROUP BY h.msno
),
cohort AS (
    SELECT * FROM current_txn
    WHERE membership_expire_date >= $cutoff AND membership_expire_date < $next_month
),
renewals AS (
    -- A lapse: a paid subscription starting more than 30 days after the previous one expired.
    SELECT msno, transaction_date,
           transaction_date > lag(membership_expire_date) OVER (
               PARTITION BY msno ORDER BY transaction_date, membership_expire_date
           ) + INTERVAL 30 DAY AS is_lapse
    FROM history
    WHERE is_cancel = 0 AND msno IN (SELECT msno FROM cohort)
),
txn_history AS (
    SELECT h.msno,
           min(h.transaction_date) AS first_transaction_date,
           count(*) FILTER (WHERE h.transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS txn_count_365d,
           count(*) FILTER (WHERE h.is_cancel = 0
                              AND h.transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS renewal_count_365d,
           count(*) FILTER (WHERE h.is_cancel = 1
                              AND h.transaction_date >= $cutoff - INTERVAL 90 DAY)
               AS cancel_count_90d,
           count(*) FILTER (WHERE h.is_cancel = 1
                              AND h.transaction_date >= $cutoff - INTERVAL 180 DAY)
               AS cancel_count_180d,
           count(*) FILTER (WHERE h.is_cancel = 1
                              AND h.transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS cancel_count_365d,
           avg(h.is_auto_renew) FILTER (WHERE h.transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS auto_renew_share_365d,
           avg(CASE WHEN h.plan_list_price > 0
                    THEN (h.plan_list_price - h.actual_amount_paid) / h.plan_list_price END)
               AS mean_discount_share,
           count(DISTINCT h.payment_method_id) FILTER (
               WHERE h.transaction_date >= $cutoff - INTERVAL 365 DAY) AS payment_methods_365d
    FROM history h
    WHERE h.msno IN (SELECT msno FROM cohort)
    GROUP BY h.msno
),
lapses AS (
    SELECT msno,
           count(*) FILTER (WHERE is_lapse) AS lapse_count,
           count(*) FILTER (WHERE is_lapse AND transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS lapse_count_365d
    FROM renewals
    GROUP BY msno
),
logs AS (
    -- Listening of every user in the 90 days, summed per window bucket (days before the cut-off:
    -- 7, 14, 28, 30, 60, 90) in one pass; the windows are then sums of buckets. Rows are one per
    -- user and listening day (the load drops exact duplicates, the duplicates check flags two
    -- rows for one day), so counting rows counts active days.
    SELECT msno,
           CASE WHEN date >= $cutoff - INTERVAL 7 DAY THEN 7
                WHEN date >= $cutoff - INTERVAL 14 DAY THEN 14
                WHEN date >= $cutoff - INTERVAL 28 DAY THEN 28
                WHEN date >= $cutoff - INTERVAL 30 DAY THEN 30
                WHEN date >= $cutoff - INTERVAL 60 DAY THEN 60
                ELSE 90 END AS bucket,
           sum(num_25 + num_50 + num_75 + num_985 + num_100) AS plays,
           count(*) AS days,
           sum(CASE WHEN total_secs >= 0 AND total_secs <= 86400 THEN total_secs END) AS secs,
           sum(num_unq) AS num_unq,
           sum(num_100) AS num_100,
           max(date) AS last_listen_date
    FROM user_logs
    WHERE date >= $cutoff - INTERVAL 90 DAY AND date < $cutoff
    GROUP BY ALL
),
listening AS (
    SELECT msno,
           sum(plays) FILTER (WHERE bucket <= 7) AS plays_7d,
           sum(days) FILTER (WHERE bucket <= 7) AS active_days_7d,
           sum(secs) FILTER (WHERE bucket <= 7) AS secs_7d,
           sum(num_unq) FILTER (WHERE bucket <= 7) AS unique_songs_7d,
           sum(num_100) FILTER (WHERE bucket <= 7)
               / nullif(sum(plays) FILTER (WHERE bucket <= 7), 0) AS completion_ratio_7d,
           sum(plays) FILTER (WHERE bucket <= 14) AS plays_14d,
           sum(days) FILTER (WHERE bucket <= 14) AS active_days_14d,
           sum(secs) FILTER (WHERE bucket <= 14) AS secs_14d,
           sum(num_unq) FILTER (WHERE bucket <= 14) AS unique_songs_14d,
           sum(num_100) FILTER (WHERE bucket <= 14)
               / nullif(sum(plays) FILTER (WHERE bucket <= 14), 0) AS completion_ratio_14d,
           sum(plays) FILTER (WHERE bucket <= 30) AS plays_30d,
           sum(days) FILTER (WHERE bucket <= 30) AS active_days_30d,
           sum(secs) FILTER (WHERE bucket <= 30) AS secs_30d,
           sum(num_unq) FILTER (WHERE bucket <= 30) AS unique_songs_30d,
           sum(num_100) FILTER (WHERE bucket <= 30)
               / nullif(sum(plays) FILTER (WHERE bucket <= 30), 0) AS completion_ratio_30d,
           sum(plays) FILTER (WHERE bucket <= 60) AS plays_60d,
           sum(days) FILTER (WHERE bucket <= 60) AS active_days_60d,
           sum(secs) FILTER (WHERE bucket <= 60) AS secs_60d,
           sum(num_unq) FILTER (WHERE bucket <= 60) AS unique_songs_60d,
           sum(num_100) FILTER (WHERE bucket <= 60)
               / nullif(sum(plays) FILTER (WHERE bucket <= 60), 0) AS completion_ratio_60d,
           sum(plays) AS plays_90d,
           sum(days) AS active_days_90d,
           sum(secs) AS secs_90d,
           sum(num_unq) AS unique_songs_90d,
           sum(num_100) / nullif(sum(plays), 0) AS completion_ratio_90d,
           sum(plays) FILTER (WHERE bucket = 28) AS plays_prev_14d,
           sum(secs) FILTER (WHERE bucket = 28) AS secs_prev_14d,
           max(last_listen_date) AS last_listen_date
    FROM logs
    WHERE msno IN (SELECT msno FROM cohort)
    GROUP BY msno
)
SELECT
    c.msno,
    $cutoff::DATE AS cohort_month,
    date_diff('day', $cutoff::DATE, c.membership_expire_date) AS days_to_expiry,
    c.payment_plan_days AS last_plan_days,
    c.plan_list_price AS last_list_price,
    c.actual_amount_paid AS last_amount_paid,
    c.plan_list_price - c.actual_amount_paid AS last_discount,
    CASE WHEN c.plan_list_price > 0
         THEN (c.plan_list_price - c.actual_amount_paid) / c.plan_list_price END
        AS last_discount_share,
    CAST(c.actual_amount_paid = 0 AND c.plan_list_price > 0 AS INTEGER) AS last_is_free,
    c.is_auto_renew AS last_is_auto_renew,
    c.is_cancel AS last_is_cancel,
    c.payment_method_id AS last_payment_method_id,
    t.txn_count_365d,
    t.renewal_count_365d,
    t.cancel_count_90d,
    t.cancel_count_180d,
    t.cancel_count_365d,
    t.auto_renew_share_365d,
    t.mean_discount_share,
    t.payment_methods_365d,
    coalesce(l.lapse_count, 0) AS lapse_count,
    coalesce(l.lapse_count_365d, 0) AS lapse_count_365d,
    date_diff('day', t.first_transaction_date, $cutoff::DATE) AS subscription_tenure_days,
    coalesce(g.plays_7d, 0) AS plays_7d,
    coalesce(g.active_days_7d, 0) AS active_days_7d,
    coalesce(g.secs_7d, 0) AS secs_7d,
    coalesce(g.unique_songs_7d, 0) AS unique_songs_7d,
    g.completion_ratio_7d,
    coalesce(g.plays_14d, 0) AS plays_14d,
    coalesce(g.active_days_14d, 0) AS active_days_14d,
    coalesce(g.secs_14d, 0) AS secs_14d,
    coalesce(g.unique_songs_14d, 0) AS unique_songs_14d,
    g.completion_ratio_14d,
    coalesce(g.plays_30d, 0) AS plays_30d,
    coalesce(g.active_days_30d, 0) AS active_days_30d,
    coalesce(g.secs_30d, 0) AS secs_30d,
    coalesce(g.unique_songs_30d, 0) AS unique_songs_30d,
    g.completion_ratio_30d,
    coalesce(g.plays_60d, 0) AS plays_60d,
    coalesce(g.active_days_60d, 0) AS active_days_60d,
    coalesce(g.secs_60d, 0) AS secs_60d,
    coalesce(g.unique_songs_60d, 0) AS unique_songs_60d,
    g.completion_ratio_60d,
    coalesce(g.plays_90d, 0) AS plays_90d,
    coalesce(g.active_days_90d, 0) AS active_days_90d,
    coalesce(g.secs_90d, 0) AS secs_90d,
    coalesce(g.unique_songs_90d, 0) AS unique_songs_90d,
    g.completion_ratio_90d,
    (coalesce(g.plays_14d, 0) - coalesce(g.plays_prev_14d, 0))
        / (coalesce(g.plays_prev_14d, 0) + 1.0) AS plays_trend_14d,
    (coalesce(g.secs_14d, 0) - coalesce(g.secs_prev_14d, 0))
        / (coalesce(g.secs_prev_14d, 0) + 3600.0) AS secs_trend_14d,
    date_diff('day', g.last_listen_date, $cutoff::DATE) AS days_since_last_listen,
    m.city,
    CASE WHEN m.bd > 0 AND m.bd <= 100 THEN m.bd END AS age,
    CASE m.gender WHEN 'male' THEN 1 WHEN 'female' THEN 2 ELSE 0 END AS gender_code,
    m.registered_via,
    CASE WHEN m.registration_init_time < $cutoff
         THEN date_diff('day', m.registration_init_time, $cutoff::DATE) END AS registration_age_days
FROM cohort c
LEFT JOIN txn_history t USING (msno)
LEFT JOIN lapses l USING (msno)
LEFT JOIN listening g USING (msno)
LEFT JOIN members m ON m.msno = c.msno AND m.registration_init_time < $cutoff
ORDER BY c.msno;

CREATE TABLE IF NOT EXISTS features AS SELECT * FROM cohort_features LIMIT 0;

DELETE FROM features WHERE cohort_month = $cutoff;

INSERT INTO features BY NAME SELECT * FROM cohort_features;
