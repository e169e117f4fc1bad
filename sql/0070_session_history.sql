-- Purpose: the sessions of every date, as each as-of date needs them: the graded ones
-- (accepted, de-duplicated, valid attempts, hence scored), and the number of accepted,
-- de-duplicated sessions per day (and the newest one's time) for the manifest's counts
-- and the completeness checks. With these, no as-of file needs the `sessions` table
-- itself. graded_history is not sorted: the snapshot's writer sorts each day's
-- partition it writes (publish/snapshot.py), and most nights write one day and share the
-- rest; sorting every session here was a third of a night's SQL at 10M sessions. Also
-- graded_days: a content digest of each day's graded sessions, which tells the writer
-- which partitions equal a published snapshot's (and can be shared with it); and
-- day_digests: what each as-of day's snapshot is made of, as running digests (the
-- manifest's data_digest; see the statement below).
-- Grain: graded_history: one row per graded session, of any date; graded_days and
-- sessions_per_day: one row per UTC day with at least one graded (accepted) session;
-- day_digests: one row per UTC day with a session or a directory row entering the
-- snapshot, and one for 0001-01-01 (rows of every snapshot).
-- Phase: build
CREATE OR REPLACE TABLE graded_history AS
SELECT session_id, scenario_id, user_id, created_at, score, duration_seconds
FROM sessions
WHERE is_valid_attempt;

-- Two XORs of row hashes over every column a partition file holds, and the row count:
-- equal digests mean equal rows, which the writer puts in one order (publish/snapshot.py
-- `write_sessions`).
CREATE OR REPLACE TABLE graded_days AS
SELECT CAST(created_at AS DATE) AS day,
       count(*) AS sessions,
       bit_xor(hash(scenario_id, user_id, session_id, created_at, score, duration_seconds))
           AS h1,
       bit_xor(hash('graded', scenario_id, user_id, session_id, created_at, score,
                    duration_seconds)) AS h2
FROM graded_history
GROUP BY day
ORDER BY day;

CREATE OR REPLACE TABLE sessions_per_day AS
SELECT CAST(created_at AS DATE) AS day, count(*) AS sessions, max(created_at) AS newest
FROM sessions
GROUP BY day;

-- day_digests: what each as-of day's snapshot is made of, as order-independent digests
-- (publish/fingerprint.py `data_digest` turns a day's row into the manifest's
-- data_digest). Per UTC day: the accepted, de-duplicated sessions created that day (their
-- count and two XORs of row hashes, over every column the later SQL reads), and the
-- directory rows (0050, 0060) that enter the snapshot that day: a user or scenario from
-- its first session's day, members, exported scenarios, groups and memberships from the
-- first row (day 0001-01-01: every snapshot has them). Each column is then combined over
-- all days up to the row's: one row per day, so a day's digest is one lookup (the
-- newest row on or before it).
CREATE OR REPLACE TABLE day_digests AS
WITH session_days AS (
    SELECT CAST(created_at AS DATE) AS day,
           count(*) AS sessions,
           bit_xor(hash(session_id, user_id, scenario_id, created_at, score,
                        duration_seconds, is_valid_attempt)) AS h1,
           bit_xor(hash('session', session_id, user_id, scenario_id, created_at, score,
                        duration_seconds, is_valid_attempt)) AS h2
    FROM sessions
    GROUP BY day
),
directory_rows AS (
    SELECT CASE WHEN is_member THEN DATE '0001-01-01'
                ELSE CAST(first_session_at AS DATE) END AS day,
           hash('user', user_id, email, is_system, is_member, first_name, last_name) AS d1,
           hash('user:2', user_id, email, is_system, is_member, first_name, last_name) AS d2
    FROM user_directory
    UNION ALL
    SELECT CASE WHEN in_scenarios_export THEN DATE '0001-01-01'
                ELSE CAST(first_session_at AS DATE) END,
           hash('scenario', scenario_id, slug, name, in_scenarios_export),
           hash('scenario:2', scenario_id, slug, name, in_scenarios_export)
    FROM scenario_directory
    UNION ALL
    SELECT DATE '0001-01-01', hash('group', group_id, name), hash('group:2', group_id, name)
    FROM groups
    UNION ALL
    SELECT DATE '0001-01-01', hash('membership', group_id, user_id),
           hash('membership:2', group_id, user_id)
    FROM group_memberships
),
per_day AS (
    SELECT day, sum(sessions) AS sessions, bit_xor(h1) AS h1, bit_xor(h2) AS h2,
           sum(directory_rows) AS directory_rows, bit_xor(d1) AS d1, bit_xor(d2) AS d2
    FROM (
        SELECT day, sessions, h1, h2, 0 AS directory_rows,
               CAST(0 AS UBIGINT) AS d1, CAST(0 AS UBIGINT) AS d2
        FROM session_days
        UNION ALL
        SELECT day, 0, CAST(0 AS UBIGINT), CAST(0 AS UBIGINT), count(*), bit_xor(d1),
               bit_xor(d2)
        FROM directory_rows
        GROUP BY day
    )
    GROUP BY day
)
SELECT day,
       CAST(sum(sessions) OVER running AS BIGINT) AS sessions,
       bit_xor(h1) OVER running AS h1,
       bit_xor(h2) OVER running AS h2,
       CAST(sum(directory_rows) OVER running AS BIGINT) AS directory_rows,
       bit_xor(d1) OVER running AS d1,
       bit_xor(d2) OVER running AS d2
FROM per_day
WINDOW running AS (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY day;
