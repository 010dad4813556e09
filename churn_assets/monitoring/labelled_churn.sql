-- Churn rates for target drift: the champion's reference cohorts together, and the newest
-- labelled cohort whose labels are known by $labels_known_by and which the champion did not
-- learn from. Returns (side, cohort_month, users, churners); no 'current' row when there is none.
WITH newest AS (
    SELECT max(cohort_month) AS cohort_month
    FROM labels
    WHERE cohort_month <= $labels_known_by
      AND cohort_month NOT IN (SELECT unnest($reference_cohorts::DATE[]))
)
SELECT 'reference' AS side, NULL::DATE AS cohort_month, count(*) AS users,
       count(*) FILTER (WHERE is_churn = 1) AS churners
FROM labels
WHERE cohort_month IN (SELECT unnest($reference_cohorts::DATE[]))
UNION ALL
SELECT 'current', l.cohort_month, count(*), count(*) FILTER (WHERE l.is_churn = 1)
FROM labels AS l JOIN newest USING (cohort_month)
GROUP BY l.cohort_month;
