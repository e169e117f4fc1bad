-- Purpose: every user the exports know, with their email, names and system-user flag, and
-- when their first accepted session was created. None of it depends on the as-of date
-- (emails and names are as of the export, like group membership), so a backfill computes
-- it once and each day only picks its users (0080). Each of email, first_name and
-- last_name, on its own: the member record's (if not blank), else the one on the user's
-- latest accepted session that has a non-blank one (latest created_at, then highest
-- session id), over all sessions; NULL when none. Blank = empty or only white space
-- (E' \t\n\x0b\f\r'). Emails are trimmed and lower-cased; names are kept as written (only
-- the blank test trims them); system users end with @exec.com.
-- Grain: one row per user: every member, and every user with an accepted, de-duplicated
-- session of any date.
-- Phase: build
CREATE OR REPLACE TABLE user_directory AS
WITH member_values AS (
    SELECT user_id,
           CASE WHEN trim(email, E' \t\n\x0b\f\r') <> ''
                THEN lower(trim(email, E' \t\n\x0b\f\r')) END AS email,
           CASE WHEN trim(first_name, E' \t\n\x0b\f\r') <> '' THEN first_name END
               AS first_name,
           CASE WHEN trim(last_name, E' \t\n\x0b\f\r') <> '' THEN last_name END AS last_name
    FROM members
),
-- Only users lacking at least one of the three values from their member record need their
-- sessions looked at, in one pass (one GROUP BY) for all three. The blank tests are
-- aggregate FILTERs, not a WHERE, so that they run after the anti-join: as a WHERE, the
-- optimizer moves them into the scan and trims every session's values (most of this
-- file's time at 10M sessions). A value that is blank on every session gives NULL. Each
-- blank test first looks at the first character: above 32 (none of the trimmed ones),
-- the value is not blank and is not trimmed (a CASE evaluates its ELSE only for the
-- rows its WHEN leaves).
session_values AS (
    SELECT user_id,
           lower(trim(arg_max(user_email, (created_at, session_id))
                          FILTER (WHERE CASE WHEN ascii(user_email) > 32 THEN true
                                        ELSE trim(user_email, E' \t\n\x0b\f\r') <> '' END),
                      E' \t\n\x0b\f\r')) AS email,
           arg_max(user_first_name, (created_at, session_id))
               FILTER (WHERE CASE WHEN ascii(user_first_name) > 32 THEN true
                             ELSE trim(user_first_name, E' \t\n\x0b\f\r') <> '' END)
               AS first_name,
           arg_max(user_last_name, (created_at, session_id))
               FILTER (WHERE CASE WHEN ascii(user_last_name) > 32 THEN true
                             ELSE trim(user_last_name, E' \t\n\x0b\f\r') <> '' END)
               AS last_name
    FROM sessions
    WHERE user_id NOT IN (
        SELECT user_id FROM member_values
        WHERE email IS NOT NULL AND first_name IS NOT NULL AND last_name IS NOT NULL
    )
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
    u.first_session_at,
    coalesce(m.first_name, s.first_name) AS first_name,
    coalesce(m.last_name, s.last_name) AS last_name
FROM known_users AS u
LEFT JOIN member_values AS m ON m.user_id = u.user_id
LEFT JOIN session_values AS s ON s.user_id = u.user_id;
