-- Raw tables: the landing files as typed rows, dates as DATE, exact duplicates dropped.
CREATE TABLE IF NOT EXISTS members (
    msno VARCHAR NOT NULL,
    city INTEGER,
    bd INTEGER,
    gender VARCHAR,
    registered_via INTEGER,
    registration_init_time DATE,
    -- The first cohort day from which this row is known (its file's month + 1, DESIGN §3).
    known_from DATE,
    -- The landing file (its name) the row was loaded from: what a later load of that file
    -- replaces, and what stays when the file leaves the landing folder.
    source_file VARCHAR
);
ALTER TABLE members ADD COLUMN IF NOT EXISTS known_from DATE;
ALTER TABLE members ADD COLUMN IF NOT EXISTS source_file VARCHAR;
CREATE TABLE IF NOT EXISTS transactions (
    msno VARCHAR NOT NULL,
    payment_method_id INTEGER,
    payment_plan_days INTEGER,
    plan_list_price INTEGER,
    actual_amount_paid INTEGER,
    is_auto_renew INTEGER,
    transaction_date DATE NOT NULL,
    membership_expire_date DATE,
    is_cancel INTEGER,
    -- The landing file (its name) the row was loaded from, as for members.
    source_file VARCHAR
);
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS source_file VARCHAR;
CREATE TABLE IF NOT EXISTS user_logs (
    msno VARCHAR NOT NULL,
    date DATE NOT NULL,
    num_25 INTEGER,
    num_50 INTEGER,
    num_75 INTEGER,
    num_985 INTEGER,
    num_100 INTEGER,
    num_unq INTEGER,
    total_secs DOUBLE,
    source_file VARCHAR
);
ALTER TABLE user_logs ADD COLUMN IF NOT EXISTS source_file VARCHAR;
CREATE TABLE IF NOT EXISTS labels (
    msno VARCHAR NOT NULL,
    cohort_month DATE NOT NULL,
    is_churn INTEGER NOT NULL
);
-- Which landing files the stored rows of a monthly table's month came from: every file read for
-- the month (with the rows it kept there, 0 for one whose rows were all copies of another's) and
-- every file that has left the landing folder whose rows stay. The signature (name, size,
-- modification time) is what tells a file that replaces one from the same file put back.
CREATE TABLE IF NOT EXISTS raw_files (
    table_name VARCHAR NOT NULL,
    month DATE NOT NULL,
    source_file VARCHAR NOT NULL,
    signature VARCHAR,
    rows BIGINT NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);
