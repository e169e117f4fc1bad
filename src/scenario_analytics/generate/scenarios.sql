-- Purpose: the table `scenarios`: every scenario a session can name, and its export row.
CREATE TEMP TABLE scenarios AS
SELECT
    scn,
    md5('scenario/' || getvariable('seed') || '/' || scn) AS h,
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a'
        || substr(h, 18, 3) || '-' || substr(h, 21, 12) AS scenario_id,
    ['Procurement Discovery', 'Cold Call Opener', 'Pricing Objections', 'Renewal Negotiation',
     'Executive Briefing', 'Demo Follow-up', 'Competitive Displacement',
     'The "Budget Freeze" Call', 'Security Review', 'Onboarding Kickoff', 'Churn Risk Save',
     'Upsell Conversation', 'Contract Redlines', 'Champion Building',
     'Multi-threading the Deal', 'Discovery: Pain, Impact & Urgency',
     'Handling "Send Me Info"', 'Quarterly Business Review', 'Pilot Scoping',
     'Difficult Customer Escalation', 'Price Increase Announcement', 'Reference Call Prep',
     'Partner Co-sell Pitch', 'Procurement Final Round', 'Café Owner Pitch'][1 + scn % 25]
        AS topic,
    scn // 25 AS level,
    CASE WHEN level = 0 THEN topic
         ELSE topic || ' ' || ['II', 'Advanced', 'for Managers', '(EMEA)', 'Speed Round'][
              1 + (level - 1) % 5]
              || CASE WHEN level > 5 THEN ' ' || ((level - 1) // 5 + 1) ELSE '' END
    END AS scenario_name,
    trim(regexp_replace(lower(strip_accents(scenario_name)), '[^a-z0-9]+', '-', 'g'), '-')
        AS scenario_slug,
    'Practice: ' || scenario_name || '.' AS description,
    ['beginner', 'intermediate', 'advanced'][1 + pick(scn, 'difficulty', 3)] AS difficulty,
    iso_z(start_us - (30 + pick(scn, 'created', 300)) * 86400000000) AS created_at,
    iso_z(start_us - pick(scn, 'updated', 30) * 86400000000) AS updated_at,
    -- the last scenario was archived: its sessions remain, its export row does not
    scn <> n_scenarios - 1 AS in_export
FROM range((SELECT n_scenarios FROM cfg)) r(scn), cfg;
