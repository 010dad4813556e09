"""Raw layer: KKBox-format files from the landing folder into DuckDB tables, partition by month."""
