-- Purpose: every rejected row of every entity, with where it came from and why.
-- Grain: one row per rejected input row.
-- Phase: build
CREATE OR REPLACE TABLE rejects AS
SELECT r.entity, f.rel_path AS source_file, r.position, r.reason, r.raw
FROM (
    SELECT 'sessions' AS entity, file_id, pos AS position, reject_reason AS reason, raw
    FROM staged_sessions WHERE reject_reason IS NOT NULL
    UNION ALL
    SELECT 'members', file_id, pos, reject_reason, raw
    FROM staged_members WHERE reject_reason IS NOT NULL
    UNION ALL
    SELECT 'scenarios', file_id, pos, reject_reason, raw
    FROM staged_scenarios WHERE reject_reason IS NOT NULL
    UNION ALL
    SELECT 'groups', file_id, pos, reject_reason, raw
    FROM staged_groups WHERE reject_reason IS NOT NULL
    UNION ALL
    SELECT 'group_memberships', file_id, pos, reject_reason, raw
    FROM staged_group_memberships WHERE reject_reason IS NOT NULL
) AS r
JOIN export_files AS f ON f.file_id = r.file_id;
