-- table: ae_attendance
-- grain: one row per A&E attendance (ECDS)
-- depends:
SELECT person_id, record_id AS attendance_id, provider_code, gp_practice_code AS practice_code, arrival_date,
       department_type, arrival_mode, disposal, disposal = 'admitted' AS admitted, lsoa_code,
       CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_ecds
