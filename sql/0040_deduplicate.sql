-- Purpose: resolve duplicates among accepted rows: the row from the file that sorts last
-- by relative path (byte order) wins, then the last line/row within that file.
-- Grain: sessions: one row per session id; members, scenarios, groups: one row per id;
-- memberships: one row per (group_id, user_id) pair.
-- Phase: build
-- Sessions are many: one aggregate finds each id's last (file, line), one join keeps it.
-- (file_id, pos) packs into one BIGINT: file_id * 10^10 + pos, positions below 10^10.
CREATE OR REPLACE TABLE sessions AS
WITH last_row AS (
    SELECT session_id, max(file_id * 10000000000 + pos) AS row_key
    FROM staged_sessions
    WHERE reject_reason IS NULL
    GROUP BY session_id
)
SELECT s.session_id, s.user_id, s.scenario_id, s.user_email, s.user_first_name,
       s.user_last_name, s.scenario_slug, s.scenario_name, s.created_at, s.score,
       s.duration_seconds, s.is_valid_attempt
FROM staged_sessions AS s
JOIN last_row AS l
  ON l.session_id = s.session_id AND l.row_key = s.file_id * 10000000000 + s.pos
WHERE s.reject_reason IS NULL;

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
