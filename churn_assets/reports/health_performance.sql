-- Realised metrics of every version on the cohorts whose labels were known by the page's month.
SELECT model_version, cohort_month, auc, log_loss, lift_top_decile, is_champion, users
FROM model_performance
WHERE cohort_month <= $labelled_by
ORDER BY cohort_month, model_version;
