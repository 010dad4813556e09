-- The champion's scores of the newest cohort labelled by the page's month, with the churn seen.
WITH newest AS (
    SELECT max(p.cohort_month) AS cohort_month
    FROM predictions AS p JOIN labels AS l USING (msno, cohort_month)
    WHERE p.cohort_month <= $labelled_by
)
SELECT p.cohort_month, p.model_version, p.churn_probability, l.is_churn
FROM predictions AS p
JOIN labels AS l USING (msno, cohort_month)
JOIN newest USING (cohort_month);
