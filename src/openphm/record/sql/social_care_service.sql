-- table: social_care_service
-- grain: one row per adult social care service record (each year's extract lists the support in that year)
-- cost: the weeks of the service inside its extract's financial year (from the later of its start and
-- 1 April to the earlier of its end and 1 April next), times the tariff's units per week (hours of home
-- care, sessions of day care; 1 for weekly prices) and unit cost. A record whose file is not named by a
-- financial year (asc_2023-24) has no year to cost, and is left uncosted (reported by the build).
-- depends:
WITH services AS (
    SELECT *, CASE WHEN regexp_matches(coalesce(file_period, ''), '^[0-9]{4}-[0-9]{2}$') THEN file_period END AS fy
    FROM linked_asc
),
spans AS (
    SELECT *, CAST(substr(fy, 1, 4) || '-04-01' AS DATE) AS fy_start,
           CAST(CAST(CAST(substr(fy, 1, 4) AS INTEGER) + 1 AS VARCHAR) || '-04-01' AS DATE) AS fy_end
    FROM services
),
weeks AS (
    -- (greatest and least skip NULLs, so a record with no year is tested for first)
    SELECT *, CASE WHEN fy IS NOT NULL
                   THEN greatest(date_diff('day', greatest(start_date, fy_start),
                                           least(coalesce(end_date, fy_end), fy_end)), 0) / 7.0 END AS weeks_in_year
    FROM spans
)
SELECT person_id, record_id AS service_id, la_code, service_type, start_date, end_date,
       service_type IN ('Residential Care', 'Nursing Care') AS care_home_placement,
       fy AS financial_year, CAST(round(weeks_in_year, 4) AS DECIMAL(8, 4)) AS weeks_in_year,
       service_type AS cost_category,
       CAST(round(weeks_in_year * coalesce(t.units_per_week, 1) * t.unit_cost, 2) AS DECIMAL(12, 2)) AS cost
FROM weeks AS a
LEFT JOIN tariff AS t ON t.activity = 'social_care_service' AND t.category = a.service_type
