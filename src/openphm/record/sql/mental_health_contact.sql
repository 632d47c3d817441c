-- table: mental_health_contact
-- grain: one row per mental health contact (MHSDS)
-- depends:
SELECT person_id, record_id AS contact_id, provider_code, gp_practice_code AS practice_code, contact_date, team_type,
       care_coordinator = 'Y' AS has_care_coordinator, care_plan_agreed_date, CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_mhsds
