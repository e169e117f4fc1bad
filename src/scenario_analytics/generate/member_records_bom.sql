-- Purpose: the rows of the CSV members export, whose header starts with a byte order mark.
-- The first column's name carries a UTF-8 byte order mark, which the contract tolerates:
-- the alias below is U+FEFF followed by `id` (an invisible character; keep it).
SELECT user_id AS "﻿id", member_email AS email, first_name, last_name, role,
       member_created_at AS created_at
FROM users WHERE is_member ORDER BY u;
