-- Features of cohort $cutoff: users whose membership expiry, as known before $cutoff, falls in
-- [$cutoff, $next_month). Every row read is dated strictly before $cutoff (DESIGN §3).
CREATE OR REPLACE TEMP TABLE cohort_features AS
WITH history AS (
    SELECT * FROM transactions WHERE transaction_date < $cutoff
),
current_txn AS (
    SELECT * FROM history
    QUALIFY row_number() OVER (
        PARTITION BY msno ORDER BY transaction_date DESC, membership_expire_date DESC
    ) = 1
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
           count(*) FILTER (WHERE h.transaction_date >= $cutoff - INTERVAL 365 DAY) AS txn_count_365d,
           count(*) FILTER (WHERE h.is_cancel = 1 AND h.transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS cancel_count_365d,
           avg(h.is_auto_renew) FILTER (WHERE h.transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS auto_renew_share_365d,
           avg(CASE WHEN h.plan_list_price > 0
                    THEN (h.plan_list_price - h.actual_amount_paid) / h.plan_list_price END)
               AS mean_discount_share
    FROM history h
    WHERE h.msno IN (SELECT msno FROM cohort)
    GROUP BY h.msno
),
lapses AS (
    SELECT msno, count(*) FILTER (WHERE is_lapse) AS lapse_count FROM renewals GROUP BY msno
),
logs AS (
    SELECT msno, date,
           num_25 + num_50 + num_75 + num_985 + num_100 AS plays,
           num_100, num_unq,
           CASE WHEN total_secs >= 0 AND total_secs <= 86400 THEN total_secs END AS secs
    FROM user_logs
    WHERE date >= $cutoff - INTERVAL 90 DAY AND date < $cutoff
      AND msno IN (SELECT msno FROM cohort)
),
listening AS (
    SELECT msno,
           sum(plays) FILTER (WHERE date >= $cutoff - INTERVAL 7 DAY) AS plays_7d,
           sum(plays) FILTER (WHERE date >= $cutoff - INTERVAL 30 DAY) AS plays_30d,
           sum(plays) AS plays_90d,
           count(DISTINCT date) FILTER (WHERE date >= $cutoff - INTERVAL 7 DAY) AS active_days_7d,
           count(DISTINCT date) FILTER (WHERE date >= $cutoff - INTERVAL 30 DAY) AS active_days_30d,
           count(DISTINCT date) AS active_days_90d,
           sum(secs) FILTER (WHERE date >= $cutoff - INTERVAL 30 DAY) AS secs_30d,
           sum(secs) AS secs_90d,
           sum(num_unq) FILTER (WHERE date >= $cutoff - INTERVAL 30 DAY) AS unique_songs_30d,
           sum(num_100) FILTER (WHERE date >= $cutoff - INTERVAL 30 DAY)
               / nullif(sum(plays) FILTER (WHERE date >= $cutoff - INTERVAL 30 DAY), 0)
               AS completion_ratio_30d,
           coalesce(sum(plays) FILTER (WHERE date >= $cutoff - INTERVAL 14 DAY), 0) AS plays_14d,
           coalesce(sum(plays) FILTER (WHERE date >= $cutoff - INTERVAL 28 DAY
                                         AND date < $cutoff - INTERVAL 14 DAY), 0) AS plays_prev_14d,
           max(date) AS last_listen_date
    FROM logs
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
    c.is_auto_renew AS last_is_auto_renew,
    c.is_cancel AS last_is_cancel,
    c.payment_method_id AS last_payment_method_id,
    t.txn_count_365d,
    t.cancel_count_365d,
    t.auto_renew_share_365d,
    t.mean_discount_share,
    coalesce(l.lapse_count, 0) AS lapse_count,
    date_diff('day', t.first_transaction_date, $cutoff::DATE) AS subscription_tenure_days,
    coalesce(g.plays_7d, 0) AS plays_7d,
    coalesce(g.plays_30d, 0) AS plays_30d,
    coalesce(g.plays_90d, 0) AS plays_90d,
    coalesce(g.active_days_7d, 0) AS active_days_7d,
    coalesce(g.active_days_30d, 0) AS active_days_30d,
    coalesce(g.active_days_90d, 0) AS active_days_90d,
    coalesce(g.secs_30d, 0) AS secs_30d,
    coalesce(g.secs_90d, 0) AS secs_90d,
    coalesce(g.unique_songs_30d, 0) AS unique_songs_30d,
    g.completion_ratio_30d,
    (coalesce(g.plays_14d, 0) - coalesce(g.plays_prev_14d, 0))
        / (coalesce(g.plays_prev_14d, 0) + 1.0) AS plays_trend_14d,
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
