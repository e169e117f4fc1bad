-- Purpose: the table `groups`: the exported groups, plus one only memberships know.
CREATE TEMP TABLE groups AS
SELECT
    g,
    'g' || hexid(g, 'group', 11) AS group_id,
    ['Sales EMEA', 'Sales NA', 'Sales APAC', 'Customer Success', 'Solutions Engineering',
     'SDR Team', 'Enterprise AEs', 'Mid-Market AEs', 'Partnerships', 'Leadership',
     'New Hires Q3', 'New Hires Q4', 'Renewals', 'Support', 'Marketing', 'RevOps',
     'Field Sales DACH', 'Field Sales France', 'Inside Sales', 'Coaches'][1 + g % 20] AS name,
    iso_z(start_us - (10 + pick(g, 'created', 500)) * 86400000000) AS created_at,
    g < n_groups AS in_export
FROM range((SELECT n_groups + orphan_group::BIGINT FROM cfg)) r(g), cfg;
