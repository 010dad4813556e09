-- Whether the decision history holds this decision already, or one taken on newer labels: a
-- replay walking months that were decided before adds nothing to it.
SELECT count(*) > 0
FROM retraining_decisions
WHERE newest_labelled_cohort > coalesce($newest, DATE '0001-01-01')
   OR (trigger = $trigger
       AND cohort_month IS NOT DISTINCT FROM $cohort
       AND action = $action
       AND newest_labelled_cohort IS NOT DISTINCT FROM $newest
       AND coalesce(run_id, '') = $run_id);
