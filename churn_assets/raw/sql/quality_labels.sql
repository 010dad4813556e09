-- Quality numbers of one cohort's labels, read from the landed rows (staged), since the stored
-- ones hold only the valid labels: one 0/1 label per user.
WITH users AS (
    SELECT msno,
           count(DISTINCT is_churn) FILTER (WHERE is_churn IN (0, 1)) > 1 AS conflicting,
           bool_or(is_churn NOT IN (0, 1) OR is_churn IS NULL) AS outside
    FROM staged
    WHERE msno IS NOT NULL AND msno <> ''
    GROUP BY msno
)
SELECT
    $window_start::DATE AS month,
    (SELECT count(*) FROM staged) AS rows,
    (SELECT count(*) FROM staged
     WHERE msno IS NULL OR msno = '' OR is_churn IS NULL OR is_churn NOT IN (0, 1)
        OR msno IN (SELECT msno FROM users WHERE conflicting)) AS invalid_key_rows,
    (SELECT count(*) FROM users WHERE outside) AS users_with_label_outside_0_1,
    (SELECT count(*) FROM users WHERE conflicting) AS users_with_conflicting_labels,
    (SELECT avg(is_churn) FROM labels WHERE cohort_month = $window_start) AS churn_rate,
    (SELECT count(*) FROM labels l ANTI JOIN (SELECT DISTINCT msno FROM members) m USING (msno)
     WHERE l.cohort_month = $window_start) AS unknown_user_rows;
