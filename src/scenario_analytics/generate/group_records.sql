-- Purpose: the rows of the groups export (CSV and Parquet).
SELECT group_id AS id, name, created_at FROM groups WHERE in_export ORDER BY g;
