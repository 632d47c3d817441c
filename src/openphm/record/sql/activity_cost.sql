-- table: activity_cost
-- grain: one row per costed activity: every row of every activity table (a social care service once
-- per extract year), with its date (of discharge for spells; a social care service's start), financial
-- year, setting, tariff category and cost (NULL where no
-- tariff line matched: the build reports these with their counts)
-- Financial year: of the discharge for spells (of the admission if not yet discharged), of the
-- activity's date otherwise, and the extract's year for social care.
-- A view over the activity tables, not a copy of their rows: the copy was a quarter of the build's time
-- (25 s of 91 s at 1,000,000 people) against about 1.5 s more for each whole read of it.
-- materialise: view
-- depends: inpatient_spell, ae_attendance, outpatient_appointment, gp_appointment, community_contact, mental_health_contact, social_care_service, vcse_referral
WITH activity AS (
    SELECT person_id, 'inpatient_spell' AS activity, spell_id AS activity_id,
           coalesce(discharge_date, admission_date) AS activity_date, CAST(NULL AS VARCHAR) AS given_year,
           CASE WHEN admission_type = 'elective' THEN 'Elective and day-case admissions'
                WHEN admission_type IN ('maternity', 'birth') THEN 'Maternity and births'
                ELSE 'Non-elective admissions' END AS setting,
           cost_category, cost
    FROM record.inpatient_spell
    UNION ALL
    SELECT person_id, 'ae_attendance', attendance_id, arrival_date, NULL, 'A&E', cost_category, cost
    FROM record.ae_attendance
    UNION ALL
    SELECT person_id, 'outpatient_appointment', appointment_id, appointment_date, NULL, 'Outpatients', cost_category,
           cost
    FROM record.outpatient_appointment
    UNION ALL
    SELECT person_id, 'gp_appointment', appointment_id, appointment_date, NULL, 'General practice', cost_category, cost
    FROM record.gp_appointment
    UNION ALL
    SELECT person_id, 'community_contact', contact_id, contact_date, NULL, 'Community health', cost_category, cost
    FROM record.community_contact
    UNION ALL
    SELECT person_id, 'mental_health_contact', contact_id, contact_date, NULL, 'Mental health', cost_category, cost
    FROM record.mental_health_contact
    UNION ALL
    SELECT person_id, 'social_care_service', service_id, start_date, financial_year, 'Adult social care',
           cost_category, cost
    FROM record.social_care_service
    UNION ALL
    SELECT person_id, 'vcse_referral', referral_id, referral_date, NULL, 'Social prescribing', cost_category, cost
    FROM record.vcse_referral
)
SELECT person_id, activity, activity_id, setting, cost_category, activity_date,
       CASE WHEN activity = 'social_care_service' THEN given_year
            ELSE {{ financial_year(activity_date) }} END AS financial_year,
       cost
FROM activity
