-- Per-column drift of one cohort, replacing that cohort's rows; the verdict is appended as history.
CREATE TABLE IF NOT EXISTS drift_metrics (
    cohort_month DATE NOT NULL,
    column_name VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    score DOUBLE,
    threshold DOUBLE,
    drifted BOOLEAN NOT NULL,
    reference_model_version VARCHAR
);
CREATE TABLE IF NOT EXISTS monitor_verdicts (
    cohort_month DATE NOT NULL,
    monitor VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    detail VARCHAR,
    evaluated_at TIMESTAMP NOT NULL
);
DELETE FROM drift_metrics WHERE cohort_month = $cohort;
INSERT INTO drift_metrics BY NAME SELECT * FROM drift_rows;
INSERT INTO monitor_verdicts BY NAME SELECT * FROM verdict_row;
