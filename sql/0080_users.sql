-- Purpose: the users of the snapshot with their email, system-user flag and names (as the
-- user directory, 0050, resolved them).
-- Grain: one row per user: every member, and every user with an accepted, de-duplicated
-- session created up to the end of the as-of day.
-- Phase: build
CREATE OR REPLACE TABLE users AS
SELECT user_id, email, is_system, is_member, first_name, last_name
FROM user_directory
WHERE is_member OR first_session_at <= $as_of_end;
