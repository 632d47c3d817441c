-- table: gp_appointment
-- grain: one row per GP appointment
-- depends:
SELECT person_id, record_id AS appointment_id, practice_code, appointment_date, hcp_type, appointment_mode,
       appointment_status, appointment_status = 'Attended' AS attended, CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_gp_appointments
