-- Labelled feature rows of the chosen cohorts: features joined to the labels of their cohort.
SELECT f.*, l.is_churn
FROM features f
JOIN labels l USING (msno, cohort_month)
WHERE f.cohort_month >= $first_cohort AND f.cohort_month <= $last_cohort
ORDER BY f.cohort_month, f.msno;
