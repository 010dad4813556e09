-- One month of daily listening rows (by date), replacing that month; exact duplicates dropped.
DELETE FROM user_logs WHERE date >= $month_start AND date < $month_end;
INSERT INTO user_logs
SELECT DISTINCT
    msno,
    strptime(CAST(date AS VARCHAR), '%Y%m%d')::DATE AS date,
    num_25, num_50, num_75, num_985, num_100, num_unq, total_secs
FROM landing_source
WHERE date >= $month_start_int AND date < $month_end_int;
