-- The window's months of daily listening rows (by date), replacing those months.
DELETE FROM user_logs WHERE date >= $window_start AND date < $window_end;
INSERT INTO user_logs
SELECT msno, date, num_25, num_50, num_75, num_985, num_100, num_unq, total_secs
FROM staged;
