-- table: ae_attendance
-- grain: one row per A&E attendance (ECDS)
-- cost: one attendance at the tariff line of its department type (01, 02, 03)
-- order: person_id
-- depends:
SELECT person_id, record_id AS attendance_id, provider_code, gp_practice_code AS practice_code, arrival_date,
       department_type, arrival_mode, disposal, disposal = 'admitted' AS admitted, lsoa_code,
       a.cost_key AS cost_category,
       CAST(round(t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM (SELECT *, department_type AS cost_key
      FROM linked_ecds) AS a
LEFT JOIN tariff AS t ON t.activity = 'ae_attendance' AND t.category = a.cost_key
