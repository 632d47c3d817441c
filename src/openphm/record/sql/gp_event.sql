-- table: gp_event
-- grain: one row per coded event in primary care (SNOMED CT)
-- depends:
SELECT person_id, record_id AS event_id, practice_code, event_date, snomed_code
FROM linked_gp_events
