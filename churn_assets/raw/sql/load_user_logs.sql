-- The window's months of daily listening rows, replacing those months: the landing rows are
-- inserted as they stream from the files (no staging copy), dates built from the YYYYMMDD
-- integers arithmetically (an impossible date fails the load). Exact duplicates are removed
-- afterwards by dedupe_user_logs.sql, inside the same transaction.
DELETE FROM user_logs WHERE date >= $window_start AND date < $window_end;
INSERT INTO user_logs
SELECT
    msno,
    make_date(date // 10000, date // 100 % 100, date % 100) AS date,
    num_25, num_50, num_75, num_985, num_100, num_unq, total_secs
FROM landing_source
WHERE date >= $window_start_int AND date < $window_end_int;
