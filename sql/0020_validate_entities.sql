-- Purpose: accept or reject the rows of the optional entities (members, scenarios, groups,
-- group memberships) by the contract's rules: parseable, and carrying their key.
-- Grain: one row per row read, per entity table (staged_members, staged_scenarios,
-- staged_groups, staged_group_memberships).
-- An absent key has no type tag (NULL), hence the coalesce: absent is not present.
-- Phase: build
-- Scope: per-file (a row is judged on its own fields only; the ledger keeps the result per file)
CREATE OR REPLACE TABLE staged_members AS
SELECT
    file_id, pos, kind, raw,
    CASE
        WHEN malformed THEN 'malformed_record'
        WHEN NOT coalesce(id_t IN ('string', 'integer', 'text')
                           AND (ascii(id) > 32 OR trim(id, E' \t\n\r') <> ''), false)
            THEN 'missing_id'
    END AS reject_reason,
    id AS user_id,
    CASE WHEN email_t IN ('string', 'text') THEN email END AS email,
    CASE WHEN first_name_t IN ('string', 'text') THEN first_name END AS first_name,
    CASE WHEN last_name_t IN ('string', 'text') THEN last_name END AS last_name,
    CASE WHEN role_t IN ('string', 'text') THEN role END AS role
FROM raw_members;

CREATE OR REPLACE TABLE staged_scenarios AS
SELECT
    file_id, pos, kind, raw,
    CASE
        WHEN malformed THEN 'malformed_record'
        WHEN NOT coalesce(id_t IN ('string', 'integer', 'text')
                           AND (ascii(id) > 32 OR trim(id, E' \t\n\r') <> ''), false)
            THEN 'missing_id'
    END AS reject_reason,
    id AS scenario_id,
    CASE WHEN slug_t IN ('string', 'text') THEN slug END AS slug,
    CASE WHEN name_t IN ('string', 'text') THEN name END AS name
FROM raw_scenarios;

CREATE OR REPLACE TABLE staged_groups AS
SELECT
    file_id, pos, kind, raw,
    CASE
        WHEN malformed THEN 'malformed_record'
        WHEN NOT coalesce(id_t IN ('string', 'integer', 'text')
                           AND (ascii(id) > 32 OR trim(id, E' \t\n\r') <> ''), false)
            THEN 'missing_id'
    END AS reject_reason,
    id AS group_id,
    CASE WHEN name_t IN ('string', 'text') THEN name END AS name
FROM raw_groups;

CREATE OR REPLACE TABLE staged_group_memberships AS
SELECT
    file_id, pos, kind, raw,
    CASE
        WHEN malformed THEN 'malformed_record'
        WHEN NOT coalesce(group_id_t IN ('string', 'integer', 'text')
                           AND (ascii(group_id) > 32 OR trim(group_id, E' \t\n\r') <> ''), false)
            THEN 'missing_group_id'
        WHEN NOT coalesce(user_id_t IN ('string', 'integer', 'text')
                           AND (ascii(user_id) > 32 OR trim(user_id, E' \t\n\r') <> ''), false)
            THEN 'missing_user_id'
    END AS reject_reason,
    group_id,
    user_id
FROM raw_group_memberships;
