-- table: outpatient_appointment
-- grain: one row per outpatient appointment (SUS outpatients)
-- depends:
SELECT person_id, record_id AS appointment_id, provider_code, gp_practice_code AS practice_code, appointment_date,
       first_attendance = '1' AS first_attendance, attendance_status IN ('5', '6') AS attended,
       attendance_status, treatment_specialty, CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_op
