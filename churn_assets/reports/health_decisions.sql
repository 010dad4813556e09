-- Every retraining decision taken for a cohort up to the page's month.
SELECT cohort_month, decided_at, trigger, action, reason
FROM retraining_decisions
WHERE cohort_month <= $month
ORDER BY decided_at;
