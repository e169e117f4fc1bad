-- Purpose: every user the exports know, with their email and system-user flag, and when
-- their first accepted session was created. None of it depends on the as-of date (emails
-- are as of the export, like group membership), so a backfill computes it once and each
-- day only picks its users (0080). The email is the member record's (if non-empty), else
-- the one on the user's latest accepted session that has one (latest created_at, then
-- highest session id), over all sessions; emails are trimmed and lower-cased; system
-- users end with @exec.com.
-- Grain: one row per user: every member, and every user with an accepted, de-duplicated
-- session of any date.
-- Phase: build
CREATE OR REPLACE TABLE user_directory AS
WITH member_email AS (
    SELECT user_id,
           lower(trim(email, E' \t\n\x0b\f\r')) AS email
    FROM members
    WHERE trim(email, E' \t\n\x0b\f\r') <> ''
),
-- Only users without a member email need their sessions' emails looked at. The blank
-- test is an aggregate FILTER, not a WHERE, so that it runs after the anti-join: as a
-- WHERE, the optimizer moves it into the scan and trims every session's email (most
-- of this file's time at 10M sessions). A user whose emails are all blank gets NULL.
session_email AS (
    SELECT user_id,
           lower(trim(arg_max(user_email, (created_at, session_id))
                          FILTER (WHERE trim(user_email, E' \t\n\x0b\f\r') <> ''),
                      E' \t\n\x0b\f\r')) AS email
    FROM sessions
    WHERE user_id NOT IN (SELECT user_id FROM member_email)
    GROUP BY user_id
),
-- Members are users of every snapshot; other users from their first session's day on.
known_users AS (
    SELECT user_id, true AS is_member, CAST(NULL AS TIMESTAMP) AS first_session_at
    FROM members
    UNION ALL
    SELECT user_id, false AS is_member, min(created_at) AS first_session_at
    FROM sessions
    WHERE user_id NOT IN (SELECT user_id FROM members)
    GROUP BY user_id
)
SELECT
    u.user_id,
    coalesce(m.email, s.email) AS email,
    coalesce(coalesce(m.email, s.email) LIKE '%@exec.com', false) AS is_system,
    u.is_member,
    u.first_session_at
FROM known_users AS u
LEFT JOIN member_email AS m ON m.user_id = u.user_id
LEFT JOIN session_email AS s ON s.user_id = u.user_id;
