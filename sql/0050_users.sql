-- Purpose: the users of the snapshot with their email and system-user flag. The email is
-- the member record's (if non-empty), else the one on the user's latest accepted session
-- that has one (latest created_at, then highest session id), over all sessions whatever
-- the as-of date; emails are trimmed and lower-cased; system users end with @exec.com.
-- Grain: one row per user: every member, and every user with an accepted, de-duplicated
-- session created up to the end of the as-of day.
-- Phase: build
CREATE OR REPLACE TABLE users AS
WITH member_email AS (
    SELECT user_id,
           lower(trim(email, E' \t\n\x0b\f\r')) AS email
    FROM members
    WHERE trim(email, E' \t\n\x0b\f\r') <> ''
),
-- Only users without a member email need their sessions' emails looked at.
session_email AS (
    SELECT user_id,
           lower(trim(arg_max(user_email, (created_at, session_id)),
                      E' \t\n\x0b\f\r')) AS email
    FROM sessions
    WHERE trim(user_email, E' \t\n\x0b\f\r') <> ''
      AND user_id NOT IN (SELECT user_id FROM member_email)
    GROUP BY user_id
),
snapshot_users AS (
    SELECT user_id, true AS is_member FROM members
    UNION ALL
    SELECT DISTINCT user_id, false AS is_member
    FROM sessions
    WHERE created_at <= $as_of_end
      AND user_id NOT IN (SELECT user_id FROM members)
)
SELECT
    u.user_id,
    coalesce(m.email, s.email) AS email,
    coalesce(coalesce(m.email, s.email) LIKE '%@exec.com', false) AS is_system,
    u.is_member
FROM snapshot_users AS u
LEFT JOIN member_email AS m ON m.user_id = u.user_id
LEFT JOIN session_email AS s ON s.user_id = u.user_id;
