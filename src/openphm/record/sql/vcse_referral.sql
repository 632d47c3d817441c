-- table: vcse_referral
-- grain: one row per social prescribing referral
-- cost: one social prescribing referral
-- depends:
SELECT person_id, record_id AS referral_id, organisation, referral_date, referred_by AS practice_code,
       referral_reason, a.cost_key AS cost_category,
       CAST(round(t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM (SELECT *, referral_reason AS cost_key
      FROM linked_vcse) AS a
LEFT JOIN tariff AS t ON t.activity = 'vcse_referral' AND t.category = a.cost_key
