-- No label file for the cohort: nothing staged, so its quality numbers say there are no rows.
CREATE OR REPLACE TEMP TABLE staged (msno VARCHAR, is_churn INTEGER, copies BIGINT);
