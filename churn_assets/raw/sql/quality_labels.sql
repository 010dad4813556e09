-- Quality numbers of one cohort's labels: one 0/1 label per user.
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE msno IS NULL OR msno = '' OR is_churn NOT IN (0, 1)) AS invalid_key_rows,
    count(*) - count(DISTINCT msno) AS duplicate_users,
    avg(is_churn) AS churn_rate
FROM labels
WHERE cohort_month = $month_start;
