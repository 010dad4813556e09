-- Every monitor's verdict on a cohort, appended as history (DESIGN §5 monitor_verdicts).
CREATE TABLE IF NOT EXISTS monitor_verdicts (
    cohort_month DATE NOT NULL,
    monitor VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    detail VARCHAR,
    evaluated_at TIMESTAMP NOT NULL
);
INSERT INTO monitor_verdicts VALUES ($cohort, $monitor, $severity, $detail, $evaluated_at);
