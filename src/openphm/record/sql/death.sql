-- table: death
-- grain: one row per person who died (first registration of death)
-- depends:
-- The first registration of death is taken as a whole row (a missing cause stays missing rather than
-- coming from another registration); ties on the date go to the earliest record.
SELECT person_id, date_of_death, place_of_death, underlying_cause
FROM (SELECT person_id, date_of_death, place_of_death, underlying_cause,
             row_number() OVER (PARTITION BY person_id ORDER BY date_of_death, record_id, place_of_death,
                                underlying_cause) AS pick
      FROM linked_deaths) AS ranked
WHERE pick = 1
