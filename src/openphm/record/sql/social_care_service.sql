-- table: social_care_service
-- grain: one row per adult social care service record
-- depends:
SELECT person_id, record_id AS service_id, la_code, service_type, start_date, end_date,
       service_type IN ('Residential Care', 'Nursing Care') AS care_home_placement, CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_asc
