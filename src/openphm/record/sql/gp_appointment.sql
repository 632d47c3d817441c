-- table: gp_appointment
-- grain: one row per GP appointment
-- cost: by staff group (a home visit by its own line; a status 'Unknown' is costed as held, 'DNA' as not)
-- depends:
SELECT person_id, record_id AS appointment_id, practice_code, appointment_date, hcp_type, appointment_mode,
       appointment_status, appointment_status = 'Attended' AS attended, a.cost_key AS cost_category,
       CAST(round(t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM (SELECT *, CASE WHEN appointment_status = 'DNA' THEN 'did_not_attend'
                     WHEN appointment_mode = 'Home Visit' THEN 'home_visit' ELSE hcp_type END AS cost_key
      FROM linked_gp_appointments) AS a
LEFT JOIN tariff AS t ON t.activity = 'gp_appointment' AND t.category = a.cost_key
