-- table: registration
-- grain: one row per registration of a person with a practice
-- depends:
SELECT r.person_id, r.practice_code, o.pcn_code, o.place_code, r.registration_start, r.registration_end,
       r.deregistration_reason, r.lsoa_code, r.care_home_code
FROM linked_gp_registrations AS r
LEFT JOIN reference.organisations AS o ON o.practice_code = r.practice_code
