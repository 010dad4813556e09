-- Rows per loaded month before $window_end, for the volume-stability check.
SELECT date_trunc('month', transaction_date)::DATE AS month, count(*) AS rows
FROM transactions
WHERE transaction_date < $window_end
GROUP BY ALL
ORDER BY month;
