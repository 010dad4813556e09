-- Per-column drift of one cohort, replacing that cohort's rows.
CREATE TABLE IF NOT EXISTS drift_metrics (
    cohort_month DATE NOT NULL,
    column_name VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    score DOUBLE,
    threshold DOUBLE,
    drifted BOOLEAN NOT NULL,
    reference_model_version VARCHAR
);
DELETE FROM drift_metrics WHERE cohort_month = $cohort;
INSERT INTO drift_metrics BY NAME SELECT * FROM drift_rows;
