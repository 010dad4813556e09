-- The ledger of loaded months: one row per table and month, replaced by every load of that month,
-- in the load's own transaction. A cohort is complete when every month its windows read is here.
CREATE TABLE IF NOT EXISTS raw_loads (
    table_name VARCHAR NOT NULL,
    month DATE NOT NULL,
    rows BIGINT NOT NULL,
    files VARCHAR,
    fingerprint VARCHAR,
    undated_rows BIGINT,
    loaded_at TIMESTAMP NOT NULL
);

DELETE FROM raw_loads
WHERE (table_name, month) IN (SELECT (table_name, month) FROM loaded_months);

INSERT INTO raw_loads
SELECT table_name, month, rows, files, fingerprint, undated_rows, now()::TIMESTAMP
FROM loaded_months;
