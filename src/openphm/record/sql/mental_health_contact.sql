-- table: mental_health_contact
-- grain: one row per mental health contact (MHSDS)
-- cost: one contact at its team's tariff line
-- depends:
SELECT person_id, record_id AS contact_id, provider_code, gp_practice_code AS practice_code, contact_date, team_type,
       care_coordinator = 'Y' AS has_care_coordinator, care_plan_agreed_date, a.cost_key AS cost_category,
       CAST(round(t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM (SELECT *, team_type AS cost_key
      FROM linked_mhsds) AS a
LEFT JOIN tariff AS t ON t.activity = 'mental_health_contact' AND t.category = a.cost_key
