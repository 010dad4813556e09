"""The landing folder where KKBox-format files arrive: which files make each table and what months
their rows cover, the column contract their headers are checked against, the DuckDB read a load
goes through, and the one-line message naming file, line and column when that read fails. It sits
below the resources and the raw layer, which both use it, and imports neither.
"""
