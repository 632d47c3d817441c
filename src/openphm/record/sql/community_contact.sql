-- table: community_contact
-- grain: one row per community health contact (CSDS)
-- depends:
SELECT person_id, record_id AS contact_id, provider_code, gp_practice_code AS practice_code, contact_date, team_type,
       contact_location, CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_csds
