-- The dashboards at full size (issue 13): a month's CRM figures read from indexes alone, and
-- the share of calls with a critical failure read from the daily rollups.
--
-- A month's activities by type and manager: the time range of an index that holds every
-- column the counts need (it replaces the time-only index, which it extends).
DROP INDEX crm_activities_at;
CREATE INDEX crm_activities_at ON crm_activities (at, manager_id, type, outcome);
-- Deals won or lost in a period (and the customers' repeat purchases), and the open pipeline
-- at a period's end: two ranges of these instead of every deal created before it.
CREATE INDEX crm_deals_status_closed ON crm_deals (status, closed_at, customer_id, manager_id, amount, created_at);
CREATE INDEX crm_deals_status_created ON crm_deals (status, created_at, manager_id, amount);
-- A day's overall rollup row (criterion_id '') counts in `met` the calls with a critical
-- failure (src/store/rollups.rs), so the KPI reads days instead of every critical score.
UPDATE quality_daily AS q SET met = k.n
FROM (
    SELECT COALESCE(c.manager_id, '') AS manager_id,
           CAST(COALESCE(c.started_at, c.created_at) / 86400000 AS BIGINT) AS day,
           COUNT(*) AS n
    FROM scores s JOIN calls c ON c.id = s.call_id
    WHERE s.critical_failures > 0 AND s.status = 'scored'
    GROUP BY 1, 2
) AS k
WHERE q.criterion_id = '' AND q.manager_id = k.manager_id AND q.day = k.day;
