-- table: hospital_diagnosis
-- grain: one row per diagnosis code on a hospital spell (position 1 = primary)
-- depends:
SELECT person_id, record_id AS spell_id, admission_date, position, code
FROM (
    SELECT person_id, record_id, admission_date,
           unnest(range(1, 13)) AS position,
           unnest([diag_01, diag_02, diag_03, diag_04, diag_05, diag_06, diag_07, diag_08, diag_09, diag_10,
                   diag_11, diag_12]) AS code
    FROM linked_apc
) AS d
WHERE code IS NOT NULL
