-- The cohort's ten riskiest users; equal scores in msno order, as they were scored.
SELECT msno, churn_probability, bucket, top_reasons
FROM predictions
WHERE cohort_month = $cohort
ORDER BY churn_probability DESC, msno
LIMIT 10;
