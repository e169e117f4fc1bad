-- Purpose: the number of sessions written twice (the report's `duplicates`).
SELECT count(*) FROM dups;
