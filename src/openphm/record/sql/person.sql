-- table: person
-- grain: one row per linked person (anyone with a record in any source)
-- order: person_id
-- depends: registration
WITH everyone AS (
    SELECT person_id, birth_year, birth_month, sex, 0 AS source_rank FROM linked_gp_registrations
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_apc
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_ecds
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_op
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_csds
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_mhsds
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_asc
    UNION ALL SELECT person_id, birth_year, birth_month, NULL AS sex, 1 FROM linked_vcse
    UNION ALL SELECT person_id, birth_year, birth_month, sex, 1 FROM linked_deaths
),
-- GP events and appointments carry no demographics; their people are registered, or added here
everyone_else AS (
    SELECT DISTINCT person_id, CAST(NULL AS SMALLINT) AS birth_year, CAST(NULL AS TINYINT) AS birth_month,
           CAST(NULL AS VARCHAR) AS sex, 2 AS source_rank
    FROM (SELECT person_id FROM link.record_person WHERE source IN ('gp_events', 'gp_appointments')
          EXCEPT SELECT person_id FROM linked_gp_registrations)
),
demographics AS (
    -- one whole row per person: a GP registration's values win; otherwise the commonest combination
    -- across sources (ties broken by the values themselves, so every build chooses the same)
    SELECT person_id, birth_year, birth_month, sex
    FROM (SELECT person_id, birth_year, birth_month, sex,
                 row_number() OVER (PARTITION BY person_id ORDER BY best_rank, weight DESC, birth_year NULLS LAST,
                                    birth_month NULLS LAST, sex NULLS LAST) AS pick
          FROM (SELECT person_id, birth_year, birth_month, sex,
                       min(source_rank) OVER (PARTITION BY person_id, birth_year, birth_month, sex) AS best_rank,
                       count(*) OVER (PARTITION BY person_id, birth_year, birth_month, sex) AS weight
                FROM (SELECT * FROM everyone UNION ALL SELECT * FROM everyone_else) AS all_rows) AS weighted
         ) AS ranked
    WHERE pick = 1
),
latest_registration AS (
    -- the latest registration, chosen as a whole row (a column empty on it, such as the care home of
    -- someone who has left one, stays empty rather than coming from an earlier registration)
    SELECT person_id, practice_code, lsoa_code, care_home_code, registration_start AS registered_from,
           currently_registered
    FROM (SELECT person_id, practice_code, lsoa_code, care_home_code, registration_start,
                 bool_or(registration_end IS NULL) OVER (PARTITION BY person_id) AS currently_registered,
                 row_number() OVER (PARTITION BY person_id ORDER BY registration_start DESC,
                                    registration_end DESC NULLS FIRST, practice_code, lsoa_code,
                                    care_home_code) AS pick
          FROM record.registration) AS ranked
    WHERE pick = 1
),
ethnicity AS (  -- the latest recorded (ties: the first code)
    SELECT person_id, ethnic_category
    FROM (SELECT person_id, ethnic_category,
                 row_number() OVER (PARTITION BY person_id ORDER BY registration_start DESC, ethnic_category) AS pick
          FROM linked_gp_registrations WHERE ethnic_category IS NOT NULL) AS ranked
    WHERE pick = 1
),
died AS (
    SELECT person_id, min(date_of_death) AS date_of_death FROM linked_deaths GROUP BY person_id
)
SELECT d.person_id, d.birth_year, d.birth_month, coalesce(d.sex, 'U') AS sex, e.ethnic_category,
       r.lsoa_code, CAST(imd.imd_decile AS INTEGER) AS imd_decile, r.practice_code, o.pcn_code, o.place_code,
       r.care_home_code IS NOT NULL AS care_home_resident, r.care_home_code, x.date_of_death,
       coalesce(r.currently_registered, false) AS registered, oo.person_id IS NOT NULL AS national_data_opt_out
FROM demographics AS d
LEFT JOIN latest_registration AS r ON r.person_id = d.person_id
LEFT JOIN ethnicity AS e ON e.person_id = d.person_id
LEFT JOIN died AS x ON x.person_id = d.person_id
LEFT JOIN reference.lsoa_imd2019 AS imd ON imd.lsoa_code = r.lsoa_code
LEFT JOIN reference.organisations AS o ON o.practice_code = r.practice_code
LEFT JOIN link.opted_out AS oo ON oo.person_id = d.person_id
