-- What the scoring champion promised for each cohort before its labels landed.
SELECT cohort_month, model_version, metric, estimate, low, high
FROM performance_estimates
WHERE cohort_month <= $month AND metric IN ('auc', 'log_loss', 'lift_top_decile')
ORDER BY cohort_month;
