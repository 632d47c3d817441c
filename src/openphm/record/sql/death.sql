-- table: death
-- grain: one row per person who died (first registration of death)
-- depends:
SELECT person_id, min(date_of_death) AS date_of_death, arg_min(place_of_death, date_of_death) AS place_of_death,
       arg_min(underlying_cause, date_of_death) AS underlying_cause
FROM linked_deaths
GROUP BY person_id
