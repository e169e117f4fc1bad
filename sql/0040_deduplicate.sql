-- Purpose: resolve duplicates among accepted rows: the row from the file that sorts last
-- by relative path (byte order) wins, then the last line/row within that file.
-- Grain: sessions: one row per session id; members, scenarios, groups: one row per id;
-- memberships: one row per (group_id, user_id) pair.
-- Phase: build
-- Sessions are many and repeats are few: only ids seen more than once are ranked.
CREATE OR REPLACE TABLE sessions AS
WITH accepted AS (
    SELECT file_id, pos, session_id, user_id, scenario_id, user_email, scenario_slug,
           scenario_name, created_at, score, duration_seconds, is_valid_attempt
    FROM staged_sessions
    WHERE reject_reason IS NULL
),
repeated AS (
    SELECT session_id FROM accepted GROUP BY session_id HAVING count(*) > 1
),
winners AS (
    SELECT *
    FROM (
        SELECT a.*,
               row_number() OVER (PARTITION BY a.session_id
                                  ORDER BY a.file_id DESC, a.pos DESC) AS rn
        FROM accepted AS a
        WHERE a.session_id IN (SELECT session_id FROM repeated)
    )
    WHERE rn = 1
)
SELECT session_id, user_id, scenario_id, user_email, scenario_slug, scenario_name,
       created_at, score, duration_seconds, is_valid_attempt
FROM accepted
WHERE session_id NOT IN (SELECT session_id FROM repeated)
UNION ALL
SELECT session_id, user_id, scenario_id, user_email, scenario_slug, scenario_name,
       created_at, score, duration_seconds, is_valid_attempt
FROM winners;

CREATE OR REPLACE TABLE members AS
SELECT user_id, email, first_name, last_name, role
FROM (
    SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY file_id DESC, pos DESC) AS rn
    FROM staged_members
    WHERE reject_reason IS NULL
)
WHERE rn = 1;

CREATE OR REPLACE TABLE scenarios_export AS
SELECT scenario_id, slug, name
FROM (
    SELECT *, row_number() OVER (PARTITION BY scenario_id ORDER BY file_id DESC, pos DESC) AS rn
    FROM staged_scenarios
    WHERE reject_reason IS NULL
)
WHERE rn = 1;

CREATE OR REPLACE TABLE groups AS
SELECT group_id, name
FROM (
    SELECT *, row_number() OVER (PARTITION BY group_id ORDER BY file_id DESC, pos DESC) AS rn
    FROM staged_groups
    WHERE reject_reason IS NULL
)
WHERE rn = 1;

CREATE OR REPLACE TABLE group_memberships AS
SELECT DISTINCT group_id, user_id
FROM staged_group_memberships
WHERE reject_reason IS NULL;
