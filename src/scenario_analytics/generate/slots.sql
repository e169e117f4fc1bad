-- Purpose: the table `slots`: the session lines of one part file, re-created per part.
-- One row per session line of one part file: the good sessions [lo, hi), the duplicates of
-- [dlo, dhi) (re-exported from the previous part, or repeated at the end of the last one),
-- and the bad rows placed among [lo, hi). `gi` places a row in time and picks its user, while
-- `idn` names it and drives every other draw. Materialized per part: DuckDB's range() is
-- read by one thread, a table scan by all of them.
CREATE OR REPLACE TEMP TABLE slots AS
SELECT i AS gi, i AS idn, 1 AS grp, i AS o1, -1::BIGINT AS o2, NULL::BIGINT AS bk,
       false AS is_dup
FROM range($lo, $hi) r(i)
UNION ALL
SELECT i, i, CASE WHEN i < $lo THEN 0 ELSE 2 END, i, -1, NULL, true
FROM dups WHERE i >= $dlo AND i < $dhi
UNION ALL
SELECT pos, n_sessions + k, 1, pos, k, k, false FROM (
    SELECT k, ((2 * k + 1) * n_sessions) // (2 * n_bad) AS pos, n_sessions
    FROM range((SELECT n_bad FROM cfg)) r(k), cfg
) WHERE pos >= $lo AND pos < $hi;
