-- table: outpatient_appointment
-- grain: one row per outpatient appointment (SUS outpatients)
-- cost: an attended first or follow-up appointment; one not attended costs the did_not_attend line
-- order: person_id
-- depends:
SELECT person_id, record_id AS appointment_id, provider_code, gp_practice_code AS practice_code, appointment_date,
       first_attendance = '1' AS first_attendance, attendance_status IN ('5', '6') AS attended,
       attendance_status, treatment_specialty, a.cost_key AS cost_category,
       CAST(round(t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM (SELECT *, CASE WHEN attendance_status NOT IN ('5', '6') THEN 'did_not_attend'
                     WHEN first_attendance = '1' THEN 'first' ELSE 'follow_up' END AS cost_key
      FROM linked_op) AS a
LEFT JOIN tariff AS t ON t.activity = 'outpatient_appointment' AND t.category = a.cost_key
