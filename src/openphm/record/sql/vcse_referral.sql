-- table: vcse_referral
-- grain: one row per social prescribing referral
-- depends:
SELECT person_id, record_id AS referral_id, organisation, referral_date, referred_by AS practice_code,
       referral_reason, CAST(NULL AS DECIMAL(12, 2)) AS cost
FROM linked_vcse
