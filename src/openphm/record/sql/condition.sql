-- table: condition
-- grain: one row per person and condition (from code lists: SNOMED CT in primary care, ICD-10 prefixes in hospital)
-- order: person_id
-- depends:
WITH primary_care AS (
    SELECT g.person_id, c.condition, g.event_date AS coded_on, 'gp' AS setting
    FROM linked_gp_events AS g
    JOIN codelists AS c ON c.code_system = 'SNOMED CT' AND c.code = g.snomed_code
),
hospital_codes AS (
    SELECT person_id, admission_date,
           unnest([diag_01, diag_02, diag_03, diag_04, diag_05, diag_06, diag_07, diag_08, diag_09, diag_10,
                   diag_11, diag_12]) AS code
    FROM linked_apc
),
hospital AS (
    SELECT h.person_id, c.condition, h.admission_date AS coded_on, 'hospital' AS setting
    FROM hospital_codes AS h
    JOIN codelists AS c ON c.code_system = 'ICD-10' AND starts_with(h.code, c.code)
)
SELECT person_id, condition, min(coded_on) AS first_date, max(coded_on) AS latest_date,
       bool_or(setting = 'gp') AS recorded_in_primary_care, bool_or(setting = 'hospital') AS recorded_in_hospital
FROM (SELECT * FROM primary_care UNION ALL SELECT * FROM hospital) AS coded
GROUP BY person_id, condition
