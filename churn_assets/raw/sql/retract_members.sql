-- Retracting members: the snapshots of files that have left the landing folder go; the present
-- files' rows are then loaded as always.
DELETE FROM members WHERE source_file IN (SELECT source_file FROM retracted_files);
