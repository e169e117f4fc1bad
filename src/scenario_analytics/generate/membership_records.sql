-- Purpose: the rows of the group memberships export.
SELECT group_id, user_id FROM memberships ORDER BY group_id, user_id, listed;
