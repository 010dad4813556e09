-- Coverage of cohort $cutoff: is every month its windows read entered in the raw_loads ledger?
-- Listening: every month the 90 days before $cutoff touch. Payments: every month the 365 days
-- before $cutoff touch, from the first month of transactions ever loaded on (a user's history
-- before the data begins is not a hole; a month missing after it is). A cohort with any hole is
-- incomplete: excluded from training and drift references by default, scored with a warning.
--
-- Where the bulk of each table's history begins (payment_bulk_start, listening_bulk_start): a
-- source's first months often hold only part of its users (a payment log that starts long after
-- members registered). The level is the median rows of the three latest months loaded before the
-- cut-off; a month below half of it is thin (the bulk, the greater part, is not there yet); the
-- bulk starts at the first month loaded after the last thin one. Holes (months never loaded) are
-- the coverage's business above, not thinness. A feature whose window reaches before its table's
-- bulk start is truncated for this cohort (churn_assets/features/windows.py).
CREATE TABLE IF NOT EXISTS cohort_coverage (
    cohort_month DATE NOT NULL,
    listening_months_required INTEGER,
    listening_months_loaded INTEGER,
    payment_months_required INTEGER,
    payment_months_loaded INTEGER,
    missing_months VARCHAR,
    complete BOOLEAN NOT NULL,
    evaluated_at TIMESTAMP,
    payment_bulk_start DATE,
    listening_bulk_start DATE
);
-- Warehouses written before the bulk of the history was known.
ALTER TABLE cohort_coverage ADD COLUMN IF NOT EXISTS payment_bulk_start DATE;
ALTER TABLE cohort_coverage ADD COLUMN IF NOT EXISTS listening_bulk_start DATE;

DELETE FROM cohort_coverage WHERE cohort_month = $cutoff;

INSERT INTO cohort_coverage
WITH first_payment_month AS (
    SELECT coalesce(min(month), $cutoff::DATE) AS month
    FROM raw_loads WHERE table_name = 'transactions'
),
required AS (
    SELECT 'user_logs' AS table_name, unnest(generate_series(
        date_trunc('month', $cutoff::DATE - INTERVAL 90 DAY),
        $cutoff::DATE - INTERVAL 1 MONTH, INTERVAL 1 MONTH))::DATE AS month
    UNION ALL
    SELECT 'transactions', unnest(generate_series(
        greatest(date_trunc('month', $cutoff::DATE - INTERVAL 365 DAY),
                 (SELECT month FROM first_payment_month)),
        $cutoff::DATE - INTERVAL 1 MONTH, INTERVAL 1 MONTH))::DATE
),
found AS (
    SELECT r.table_name, r.month, l.month IS NOT NULL AS loaded
    FROM required r
    LEFT JOIN raw_loads l USING (table_name, month)
),
loaded_before AS (
    SELECT table_name, month, rows,
           row_number() OVER (PARTITION BY table_name ORDER BY month DESC) AS recency
    FROM raw_loads
    WHERE table_name IN ('transactions', 'user_logs') AND month < $cutoff::DATE
),
level AS (
    SELECT table_name, median(rows) AS level
    FROM loaded_before WHERE recency <= 3 GROUP BY table_name
),
last_thin AS (
    SELECT b.table_name, max(b.month) AS month
    FROM loaded_before b JOIN level USING (table_name)
    WHERE b.rows < level.level / 2
    GROUP BY b.table_name
),
bulk_start AS (
    SELECT b.table_name, min(b.month) AS month
    FROM loaded_before b LEFT JOIN last_thin t USING (table_name)
    WHERE t.month IS NULL OR b.month > t.month
    GROUP BY b.table_name
)
SELECT
    $cutoff::DATE,
    count(*) FILTER (WHERE table_name = 'user_logs'),
    count(*) FILTER (WHERE table_name = 'user_logs' AND loaded),
    count(*) FILTER (WHERE table_name = 'transactions'),
    count(*) FILTER (WHERE table_name = 'transactions' AND loaded),
    coalesce(string_agg(
        CASE WHEN NOT loaded THEN table_name || ' ' || strftime(month, '%Y-%m') END, ', '
        ORDER BY table_name, month), ''),
    coalesce(bool_and(loaded), false),
    now()::TIMESTAMP,
    (SELECT month FROM bulk_start WHERE table_name = 'transactions'),
    (SELECT month FROM bulk_start WHERE table_name = 'user_logs')
FROM found;
