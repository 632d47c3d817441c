-- table: community_contact
-- grain: one row per community health contact (CSDS)
-- cost: one contact at its team's tariff line
-- depends:
SELECT person_id, record_id AS contact_id, provider_code, gp_practice_code AS practice_code, contact_date, team_type,
       contact_location, a.cost_key AS cost_category,
       CAST(round(t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM (SELECT *, team_type AS cost_key
      FROM linked_csds) AS a
LEFT JOIN tariff AS t ON t.activity = 'community_contact' AND t.category = a.cost_key
