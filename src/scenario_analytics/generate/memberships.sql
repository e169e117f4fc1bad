-- Purpose: the table `memberships`: the (group, user) pairs of the memberships export.
-- A set of pairs, plus a few pairs listed twice and members of a group the groups export
-- no longer has.
CREATE TEMP TABLE memberships AS
WITH pairs AS (
    SELECT DISTINCT u, g FROM (
        SELECT u, (grp_first + j * grp_step) % n_groups AS g
        FROM users, range(3) r(j), cfg WHERE j < n_grp
        UNION ALL
        SELECT u, n_groups FROM users, cfg
        WHERE orphan_group AND is_member AND rnd(u, 'orphan') < 0.05
    )
)
SELECT g.group_id, us.user_id, 0 AS listed FROM pairs p
JOIN users us USING (u) JOIN groups g USING (g)
UNION ALL
SELECT g.group_id, us.user_id, 1 FROM users us
JOIN groups g ON g.g = us.grp_first
WHERE us.n_grp > 0 AND rnd(us.u, 'listed_twice') < 0.02;
