-- table: inpatient_spell
-- grain: one row per hospital spell (SUS APC)
-- depends:
WITH ordered AS (
    SELECT *, lead(admission_date) OVER (PARTITION BY person_id, admission_method LIKE '2%'
                                         ORDER BY admission_date, record_id) AS next_same_kind_admission
    FROM linked_apc
)
SELECT person_id, record_id AS spell_id, provider_code, gp_practice_code AS practice_code, admission_date,
       discharge_date, discharge_ready_date, date_diff('day', admission_date, discharge_date) AS length_of_stay,
       greatest(date_diff('day', coalesce(discharge_ready_date, discharge_date), discharge_date), 0) AS delayed_days,
       admission_method,
       CASE WHEN admission_method LIKE '1%' THEN 'elective' WHEN admission_method LIKE '2%' THEN 'emergency'
            WHEN admission_method LIKE '3%' THEN 'maternity' WHEN admission_method LIKE '8%' THEN 'birth'
            ELSE 'other' END AS admission_type,
       patient_classification = '2' AS day_case, admission_source, admission_source = '85' AS from_care_home,
       discharge_method, discharge_method = '4' AS died_in_hospital, discharge_destination, treatment_specialty,
       diag_01 AS primary_diagnosis, lsoa_code,
       admission_method LIKE '2%' AND next_same_kind_admission IS NOT NULL
           AND date_diff('day', discharge_date, next_same_kind_admission) BETWEEN 0 AND 30 AS readmitted_within_30_days,
       CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM ordered
