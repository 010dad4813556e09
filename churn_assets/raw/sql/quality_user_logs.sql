-- Quality numbers of one month of daily listening rows.
SELECT
    count(*) AS rows,
    count(*) FILTER (WHERE msno IS NULL OR msno = '') AS invalid_key_rows,
    count(*) FILTER (WHERE total_secs IS NULL) AS null_total_secs,
    count(*) FILTER (WHERE num_100 IS NULL) AS null_num_100,
    count(*) FILTER (WHERE num_unq IS NULL) AS null_num_unq,
    count(*) FILTER (WHERE total_secs < 0 OR total_secs > 86400) AS out_of_range_total_secs
FROM user_logs
WHERE date >= $month_start AND date < $month_end;
