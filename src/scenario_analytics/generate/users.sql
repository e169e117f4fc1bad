-- Purpose: the table `users`: users with sessions, then members who never practised.
CREATE TEMP TABLE users AS
SELECT
    u,
    'u' || hexid(u, 'user', 11) AS user_id,
    ['Jane', 'John', 'Priya', 'Wei', 'Fatima', 'Lukas', 'Zoë', 'José', 'Aoife', 'Kwame',
     'Mei', 'Carlos', 'Anna', 'Omar', 'Sofia', 'Liam', 'Yuki', 'Noah', 'Emma', 'Łukasz',
     'Chloé', 'Arjun', 'Ingrid', 'Mateo', 'Sara', 'David', 'Amara', 'Hiro', 'Elena', 'Tom',
     'Nadia', 'Björn', 'Grace', 'Ravi', 'Lea', 'Sam', 'Olu', 'Marta', 'Ivan', 'Siobhán'][
        1 + pick(u, 'first_name', 40)] AS first_name,
    ['Smith', 'Nguyễn', 'García', 'Müller', 'O''Brien', 'Kowalski', 'Chen', 'Okafor',
     'Rossi', 'Dubois', 'Tanaka', 'Silva', 'Johnson', 'Novak', 'Haddad', 'Kim', 'Patel',
     'Larsen', 'Brown', 'Fernández', 'Schmidt', 'Ivanova', 'Mensah', 'Cohen', 'Jensen',
     'Martin', 'López', 'Wójcik', 'Sato', 'Walker', 'Nakamura', 'Eriksson', 'Costa',
     'Moreau', 'Ali', 'Singh', 'Hughes', 'Van der Berg', 'Da Silva', 'St. John'][
        1 + pick(u, 'last_name', 40)] AS last_name,
    regexp_replace(lower(strip_accents(first_name || '.' || last_name)), '[^a-z.]', '', 'g')
        || u AS local_part,
    rnd(u, 'domain') AS rd,
    -- ~3% system users (exec.com in any case), and look-alikes that are not
    CASE WHEN u = 1 OR rd < 0.02 THEN 'exec.com' WHEN rd < 0.03 THEN 'EXEC.com'
         WHEN rd < 0.035 THEN 'notexec.com' WHEN rd < 0.04 THEN 'mail.exec.com'
         WHEN rd < 0.88 THEN 'acme.com' WHEN rd < 0.95 THEN 'acme.co.uk' ELSE 'gmail.com'
    END AS domain,
    local_part || '@' || domain AS email,
    -- a few users' sessions still carry an address they have since changed
    CASE WHEN rnd(u, 'moved') < 0.02 THEN local_part || '@acme-legacy.com' ELSE email END
        AS session_email,
    -- ~5% former members: sessions, but no members row
    NOT (u < n_users AND (u = 3 OR rnd(u, 'former') < 0.05)) AS is_member,
    CASE WHEN u = 4 OR rnd(u, 'no_email') < 0.02 THEN '' ELSE email END AS member_email,
    rnd(u, 'role') AS rr,
    CASE WHEN u = 0 OR rr < 0.03 THEN 'admin' WHEN rr < 0.15 THEN 'staff' ELSE 'member' END
        AS role,
    iso_z(start_us - (1 + pick(u, 'joined', 400)) * 86400000000
          + pick(u, 'joined_at', 86400) * 1000000) AS member_created_at,
    -- practises 1-4 scenarios, popular ones (low index) more often
    1 + least(floor(4 * pow(rnd(u, 'n_scenarios'), 1.6)), 3)::BIGINT AS n_scn,
    floor(n_scenarios * pow(rnd(u, 'first_scenario'), 2))::BIGINT AS scn_first,
    1 + pick(u, 'scenario_step', greatest(n_scenarios - 1, 1)) AS scn_step,
    CASE WHEN NOT is_member OR rnd(u, 'grouped') < 0.15 THEN 0
         ELSE 1 + pick(u, 'n_groups', 3) END AS n_grp,
    pick(u, 'first_group', n_groups) AS grp_first,
    1 + pick(u, 'group_step', greatest(n_groups - 1, 1)) AS grp_step
FROM range((SELECT n_users + n_extra FROM cfg)) r(u), cfg;
