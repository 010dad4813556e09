-- One cohort's feature rows with the labels that have landed for it.
SELECT f.*, l.is_churn
FROM features f
JOIN labels l USING (msno, cohort_month)
WHERE f.cohort_month = $cohort
ORDER BY f.msno;
