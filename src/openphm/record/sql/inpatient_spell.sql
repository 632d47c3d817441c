-- table: inpatient_spell
-- grain: one row per hospital spell (SUS APC)
-- order: person_id
-- depends:
-- Emergency readmissions within 30 days follow NHS Digital's definition (Compendium indicator I02040,
-- NHS Outcomes Framework 3b, CCG Outcomes Indicator Set 3.2): an emergency admission 0 to 29 days
-- (inclusive) after the last previous discharge from hospital, admissions for cancer (primary
-- diagnosis C00-C97) and obstetrics (O00-O99, and maternity and birth spells) and regular day and
-- night attendances (patient classification 3 or 4: a dialysis session is not an admission)
-- excluded, as index spells and as readmissions. Each readmission belongs to one index spell: the eligible spell of the
-- same person discharged most recently on or before the readmission's admission date (ties: the
-- later admission, then the later spell id). A spell that starts before the index spell's discharge
-- is not a readmission of it (a person is in one hospital spell at a time: overlapping spells are
-- data errors). Index spells are those discharged alive. Not applied here: NHS Digital's restriction
-- to selected specialties, and joining transfers into continuous inpatient spells.
-- Cost (openphm.finance.tariff): a regular day or night attender (patient classification 3 or 4), an
-- elective day case, an ordinary elective spell, a maternity or birth spell, or a non-elective spell
-- (short stay: 0-1 days; long stay: 2 or more, and any other admission method) at the tariff's
-- national average times the case-mix weight of the spell's HRG (openphm.finance.casemix; 1 where the
-- extract has no HRG or the weights do not know it), plus each day beyond the line's trim point at
-- the excess bed day rate, plus each critical care day at the critical care bed day rate (neonatal
-- in a birth episode, paediatric under 18 at admission, adult otherwise; days beyond the spell's
-- length, a data error, are not costed). Reference costs are per finished consultant episode; they
-- are applied per spell. A spell without a discharge date is costed without excess bed days.
WITH spells AS (
    SELECT *, {{ admission_type(admission_method) }} AS kind, {{ regular_day_attender(patient_classification) }} AS regular,
           least(coalesce(TRY_CAST(critical_care_days AS INTEGER), 0),
                 greatest(coalesce(date_diff('day', admission_date, discharge_date), 0), 0) + 1) AS cc_days,
           {{ age_at(admission_date) }} AS age_at_admission,
           NOT regexp_matches(coalesce(diag_01, ''), '^(C[0-8][0-9]|C9[0-7]|O)') AS not_cancer_or_obstetric
    FROM linked_apc
),
categorised AS (
    SELECT *, CASE WHEN regular THEN 'regular_day_attender'
                   WHEN kind = 'elective' AND patient_classification = '2' THEN 'day_case'
                   WHEN kind = 'elective' THEN 'elective'
                   WHEN kind IN ('maternity', 'birth') THEN kind
                   WHEN date_diff('day', admission_date, discharge_date) <= 1 THEN 'non_elective_short_stay'
                   ELSE 'non_elective_long_stay' END AS cost_category
    FROM spells
),
eligible AS (
    SELECT record_id, person_id, admission_date, discharge_date,
           discharge_method <> '4' AND discharge_date IS NOT NULL AS can_be_index,
           kind = 'emergency' AS can_be_readmission
    FROM spells WHERE kind NOT IN ('maternity', 'birth') AND not_cancer_or_obstetric AND NOT regular
),
readmission_of AS (
    SELECT i.record_id AS index_id,
           row_number() OVER (PARTITION BY r.record_id ORDER BY i.discharge_date DESC, i.admission_date DESC,
                                                                i.record_id DESC) AS latest
    FROM eligible AS r
    JOIN eligible AS i ON i.person_id = r.person_id AND i.record_id <> r.record_id
    WHERE r.can_be_readmission AND i.can_be_index
      AND date_diff('day', i.discharge_date, r.admission_date) BETWEEN 0 AND 29
      AND (r.admission_date > i.admission_date OR (r.admission_date = i.admission_date AND r.record_id > i.record_id))
),
readmitted AS (SELECT DISTINCT index_id FROM readmission_of WHERE latest = 1)
SELECT s.person_id, s.record_id AS spell_id, s.provider_code, s.gp_practice_code AS practice_code, s.admission_date,
       s.discharge_date, s.discharge_ready_date, date_diff('day', s.admission_date, s.discharge_date) AS length_of_stay,
       greatest(date_diff('day', coalesce(s.discharge_ready_date, s.discharge_date), s.discharge_date), 0) AS delayed_days,
       s.admission_method, s.kind AS admission_type,
       s.patient_classification = '2' AS day_case, s.admission_source, s.admission_source = '85' AS from_care_home,
       s.discharge_method, s.discharge_method = '4' AS died_in_hospital, s.discharge_destination, s.treatment_specialty,
       s.diag_01 AS primary_diagnosis, s.lsoa_code,
       coalesce(e.can_be_index, false) AS readmission_index,
       x.index_id IS NOT NULL AS readmitted_within_30_days,
       s.regular AS regular_day_attender, s.spell_hrg, s.cc_days AS critical_care_days,
       s.cost_category, w.weight IS NOT NULL AS hrg_priced,
       CAST(round(t.unit_cost * coalesce(w.weight, 1.0) + CASE WHEN t.trim_point_days IS NOT NULL
                                      AND date_diff('day', s.admission_date, s.discharge_date) > t.trim_point_days
                                     THEN (date_diff('day', s.admission_date, s.discharge_date) - t.trim_point_days)
                                          * b.unit_cost
                                     ELSE 0 END
                  + CASE WHEN s.cc_days > 0 THEN s.cc_days * c.unit_cost ELSE 0 END, 2) AS DECIMAL(12, 2)) AS cost
FROM categorised AS s
LEFT JOIN eligible AS e ON e.record_id = s.record_id
LEFT JOIN readmitted AS x ON x.index_id = s.record_id
LEFT JOIN tariff AS t ON t.activity = 'inpatient_spell' AND t.category = s.cost_category
LEFT JOIN hrg_weight AS w ON w.category = s.cost_category AND w.hrg = s.spell_hrg
LEFT JOIN tariff AS c ON c.activity = 'inpatient_spell'
     AND c.category = CASE WHEN s.kind = 'birth' THEN 'critical_care_neonatal'
                           WHEN s.age_at_admission < 18 THEN 'critical_care_paediatric'
                           ELSE 'critical_care_adult' END
LEFT JOIN tariff AS b ON b.activity = 'inpatient_spell'
     AND b.category = CASE s.cost_category WHEN 'elective' THEN 'excess_bed_day_elective'
                                           ELSE 'excess_bed_day_non_elective' END
