-- Features of cohort $cutoff: users whose membership expiry, as known before $cutoff, falls in
-- [$cutoff, $next_month). Every row read is dated strictly before $cutoff (DESIGN §3), members
-- included (the snapshot known before $cutoff). A transaction whose expiry did not parse does
-- not place its user: the latest one with a valid expiry does.
-- One aggregate per user over the payment history and one over the 90 days of listening, every
-- window a filtered aggregate of that single pass; lapses need each user's payments in order.
CREATE OR REPLACE TEMP TABLE cohort_features AS
WITH subscriptions AS (
    SELECT
        msno,
        -- The latest transaction (ties: the later expiry) is the plan the user is on.
        arg_max(
            {'expire_date': membership_expire_date, 'plan_days': payment_plan_days,
             'list_price': plan_list_price, 'amount_paid': actual_amount_paid,
             'is_auto_renew': is_auto_renew, 'is_cancel': is_cancel,
             'payment_method_id': payment_method_id},
            (transaction_date, membership_expire_date)
        ) FILTER (WHERE membership_expire_date IS NOT NULL) AS latest,
        min(transaction_date) AS first_transaction_date,
        count(*) FILTER (WHERE days_before <= 365) AS txn_count_365d,
        count(*) FILTER (WHERE is_cancel = 0 AND days_before <= 365) AS renewal_count_365d,
        count(*) FILTER (WHERE is_cancel = 1 AND days_before <= 90) AS cancel_count_90d,
        count(*) FILTER (WHERE is_cancel = 1 AND days_before <= 180) AS cancel_count_180d,
        count(*) FILTER (WHERE is_cancel = 1 AND days_before <= 365) AS cancel_count_365d,
        avg(is_auto_renew) FILTER (WHERE days_before <= 365) AS auto_renew_share_365d,
        avg(CASE WHEN plan_list_price > 0
                 THEN (plan_list_price - actual_amount_paid) / plan_list_price END)
            AS mean_discount_share,
        count(DISTINCT payment_method_id) FILTER (WHERE days_before <= 365)
            AS payment_methods_365d
    FROM (
        SELECT *, date_diff('day', transaction_date, $cutoff::DATE) AS days_before
        FROM transactions
        WHERE transaction_date < $cutoff
    )
    GROUP BY msno
),
cohort AS (
    SELECT * FROM subscriptions
    WHERE latest.expire_date >= $cutoff AND latest.expire_date < $next_month
),
lapses AS (
    SELECT msno,
           count(*) FILTER (WHERE is_lapse) AS lapse_count,
           count(*) FILTER (WHERE is_lapse AND transaction_date >= $cutoff - INTERVAL 365 DAY)
               AS lapse_count_365d
    FROM (
        SELECT msno, transaction_date,
               transaction_date > lag(membership_expire_date) OVER (
                   PARTITION BY msno ORDER BY transaction_date, membership_expire_date
               ) + INTERVAL 30 DAY AS is_lapse
        FROM transactions
        WHERE transaction_date < $cutoff AND is_cancel = 0
    )
    GROUP BY msno
),
listening AS (
    -- Rows are one per user and listening day (the load drops exact duplicates, the duplicates
    -- check flags two rows for one day), so counting rows counts active days.
    SELECT msno,
           sum(plays) FILTER (WHERE days_before <= 7) AS plays_7d,
           count(*) FILTER (WHERE days_before <= 7) AS active_days_7d,
           sum(secs) FILTER (WHERE days_before <= 7) AS secs_7d,
           sum(num_unq) FILTER (WHERE days_before <= 7) AS unique_songs_7d,
           sum(num_100) FILTER (WHERE days_before <= 7) AS full_plays_7d,
           sum(plays) FILTER (WHERE days_before <= 14) AS plays_14d,
           count(*) FILTER (WHERE days_before <= 14) AS active_days_14d,
           sum(secs) FILTER (WHERE days_before <= 14) AS secs_14d,
           sum(num_unq) FILTER (WHERE days_before <= 14) AS unique_songs_14d,
           sum(num_100) FILTER (WHERE days_before <= 14) AS full_plays_14d,
           sum(plays) FILTER (WHERE days_before <= 30) AS plays_30d,
           count(*) FILTER (WHERE days_before <= 30) AS active_days_30d,
           sum(secs) FILTER (WHERE days_before <= 30) AS secs_30d,
           sum(num_unq) FILTER (WHERE days_before <= 30) AS unique_songs_30d,
           sum(num_100) FILTER (WHERE days_before <= 30) AS full_plays_30d,
           sum(plays) FILTER (WHERE days_before <= 60) AS plays_60d,
           count(*) FILTER (WHERE days_before <= 60) AS active_days_60d,
           sum(secs) FILTER (WHERE days_before <= 60) AS secs_60d,
           sum(num_unq) FILTER (WHERE days_before <= 60) AS unique_songs_60d,
           sum(num_100) FILTER (WHERE days_before <= 60) AS full_plays_60d,
           sum(plays) AS plays_90d,
           count(*) AS active_days_90d,
           sum(secs) AS secs_90d,
           sum(num_unq) AS unique_songs_90d,
           sum(num_100) AS full_plays_90d,
           sum(plays) FILTER (WHERE days_before > 14 AND days_before <= 28) AS plays_prev_14d,
           sum(secs) FILTER (WHERE days_before > 14 AND days_before <= 28) AS secs_prev_14d,
           min(days_before) AS days_since_last_listen
    FROM (
        SELECT msno,
               date_diff('day', date, $cutoff::DATE) AS days_before,
               num_25 + num_50 + num_75 + num_985 + num_100 AS plays,
               CASE WHEN total_secs >= 0 AND total_secs <= 86400 THEN total_secs END AS secs,
               num_unq,
               num_100
        FROM user_logs
        WHERE date >= $cutoff - INTERVAL 90 DAY AND date < $cutoff
    )
    GROUP BY msno
)
SELECT
    c.msno,
    $cutoff::DATE AS cohort_month,
    date_diff('day', $cutoff::DATE, c.latest.expire_date) AS days_to_expiry,
    c.latest.plan_days AS last_plan_days,
    c.latest.list_price AS last_list_price,
    c.latest.amount_paid AS last_amount_paid,
    c.latest.list_price - c.latest.amount_paid AS last_discount,
    CASE WHEN c.latest.list_price > 0
         THEN (c.latest.list_price - c.latest.amount_paid) / c.latest.list_price END
        AS last_discount_share,
    CAST(c.latest.amount_paid = 0 AND c.latest.list_price > 0 AS INTEGER) AS last_is_free,
    c.latest.is_auto_renew AS last_is_auto_renew,
    c.latest.is_cancel AS last_is_cancel,
    c.latest.payment_method_id AS last_payment_method_id,
    c.txn_count_365d,
    c.renewal_count_365d,
    c.cancel_count_90d,
    c.cancel_count_180d,
    c.cancel_count_365d,
    c.auto_renew_share_365d,
    c.mean_discount_share,
    c.payment_methods_365d,
    coalesce(l.lapse_count, 0) AS lapse_count,
    coalesce(l.lapse_count_365d, 0) AS lapse_count_365d,
    -- Capped at the 365-day payment window every complete cohort has loaded: beyond it the
    -- figure would measure how much history was loaded, growing a month each month.
    least(date_diff('day', c.first_transaction_date, $cutoff::DATE), 365)
        AS subscription_tenure_days,
    coalesce(g.plays_7d, 0) AS plays_7d,
    coalesce(g.active_days_7d, 0) AS active_days_7d,
    coalesce(g.secs_7d, 0) AS secs_7d,
    coalesce(g.unique_songs_7d, 0) AS unique_songs_7d,
    g.full_plays_7d / nullif(g.plays_7d, 0) AS completion_ratio_7d,
    coalesce(g.plays_14d, 0) AS plays_14d,
    coalesce(g.active_days_14d, 0) AS active_days_14d,
    coalesce(g.secs_14d, 0) AS secs_14d,
    coalesce(g.unique_songs_14d, 0) AS unique_songs_14d,
    g.full_plays_14d / nullif(g.plays_14d, 0) AS completion_ratio_14d,
    coalesce(g.plays_30d, 0) AS plays_30d,
    coalesce(g.active_days_30d, 0) AS active_days_30d,
    coalesce(g.secs_30d, 0) AS secs_30d,
    coalesce(g.unique_songs_30d, 0) AS unique_songs_30d,
    g.full_plays_30d / nullif(g.plays_30d, 0) AS completion_ratio_30d,
    coalesce(g.plays_60d, 0) AS plays_60d,
    coalesce(g.active_days_60d, 0) AS active_days_60d,
    coalesce(g.secs_60d, 0) AS secs_60d,
    coalesce(g.unique_songs_60d, 0) AS unique_songs_60d,
    g.full_plays_60d / nullif(g.plays_60d, 0) AS completion_ratio_60d,
    coalesce(g.plays_90d, 0) AS plays_90d,
    coalesce(g.active_days_90d, 0) AS active_days_90d,
    coalesce(g.secs_90d, 0) AS secs_90d,
    coalesce(g.unique_songs_90d, 0) AS unique_songs_90d,
    g.full_plays_90d / nullif(g.plays_90d, 0) AS completion_ratio_90d,
    (coalesce(g.plays_14d, 0) - coalesce(g.plays_prev_14d, 0))
        / (coalesce(g.plays_prev_14d, 0) + 1.0) AS plays_trend_14d,
    (coalesce(g.secs_14d, 0) - coalesce(g.secs_prev_14d, 0))
        / (coalesce(g.secs_prev_14d, 0) + 3600.0) AS secs_trend_14d,
    g.days_since_last_listen,
    m.city,
    CASE WHEN m.bd > 0 AND m.bd <= 100 THEN m.bd END AS age,
    CASE m.gender WHEN 'male' THEN 1 WHEN 'female' THEN 2 ELSE 0 END AS gender_code,
    m.registered_via,
    CASE WHEN m.registration_init_time < $cutoff
         THEN date_diff('day', m.registration_init_time, $cutoff::DATE) END AS registration_age_days
FROM cohort c
LEFT JOIN lapses l USING (msno)
LEFT JOIN listening g USING (msno)
LEFT JOIN (
    -- Each member as known before the cut-off: the newest dated snapshot (DESIGN §3).
    SELECT * FROM members
    WHERE known_from <= $cutoff
    QUALIFY row_number() OVER (PARTITION BY msno ORDER BY known_from DESC) = 1
) m ON m.msno = c.msno AND m.registration_init_time < $cutoff;
