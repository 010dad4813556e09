-- Quality numbers of one cohort's labels: one 0/1 label per user.
SELECT
    $window_start::DATE AS month,
    count(*) AS rows,
    count(*) FILTER (WHERE l.msno IS NULL OR l.msno = '' OR l.is_churn NOT IN (0, 1))
        AS invalid_key_rows,
    avg(l.is_churn) AS churn_rate,
    count(*) FILTER (WHERE m.msno IS NULL) AS unknown_user_rows
FROM labels l
LEFT JOIN (SELECT DISTINCT msno FROM members) m ON m.msno = l.msno
WHERE l.cohort_month = $window_start;
