-- Purpose: the rows of the members export (JSONL and Parquet).
SELECT user_id AS id, member_email AS email, first_name, last_name, role,
       member_created_at AS created_at
FROM users WHERE is_member ORDER BY u;
