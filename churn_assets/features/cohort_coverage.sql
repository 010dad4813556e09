-- Coverage of cohort $cutoff: is every month its windows read entered in the raw_loads ledger?
-- Listening: every month the 90 days before $cutoff touch. Payments: every month the 365 days
-- before $cutoff touch, from the first month of transactions ever loaded on (a user's history
-- before the data begins is not a hole; a month missing after it is). A cohort with any hole is
-- incomplete: excluded from training and drift references by default, scored with a warning.
CREATE TABLE IF NOT EXISTS cohort_coverage (
    cohort_month DATE NOT NULL,
    listening_months_required INTEGER,
    listening_months_loaded INTEGER,
    payment_months_required INTEGER,
    payment_months_loaded INTEGER,
    missing_months VARCHAR,
    complete BOOLEAN NOT NULL,
    evaluated_at TIMESTAMP
);

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
    now()::TIMESTAMP
FROM found;
