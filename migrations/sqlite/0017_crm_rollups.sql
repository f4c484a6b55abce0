-- Daily CRM rollups (decision 0023): a period's activities by type and its deals' funnel
-- reach read days instead of rows. Rebuilt in full at the end of each import of the tables
-- they read (src/store/crm_rollups.rs holds the same statements); this fills them for a
-- database imported before.
--
-- Activities per UTC day, manager and type: all of them, and those with outcome productive.
CREATE TABLE crm_activity_daily (
    day        BIGINT NOT NULL,
    manager_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    total      BIGINT NOT NULL,
    productive BIGINT NOT NULL,
    PRIMARY KEY (day, manager_id, type)
);
CREATE INDEX crm_activity_daily_manager ON crm_activity_daily (manager_id, day);
-- Deals per UTC day of creation, manager, status and the set of stages they have rows for
-- (a JSON array of the names, sorted; '[]' for won deals, which reach the whole funnel). The
-- funnel's order is configuration, so the furthest stage is worked out when the rows are read.
CREATE TABLE crm_deal_daily (
    day        BIGINT NOT NULL,
    manager_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    stages     TEXT NOT NULL,
    deals      BIGINT NOT NULL,
    PRIMARY KEY (day, manager_id, status, stages)
);
CREATE INDEX crm_deal_daily_manager ON crm_deal_daily (manager_id, day);
INSERT INTO crm_activity_daily (day, manager_id, type, total, productive)
SELECT CAST(a.at / 86400000 AS BIGINT), a.manager_id, a.type, COUNT(*),
       COUNT(CASE WHEN a.outcome = 'productive' THEN 1 END)
FROM crm_activities a
GROUP BY CAST(a.at / 86400000 AS BIGINT), a.manager_id, a.type;
INSERT INTO crm_deal_daily (day, manager_id, status, stages, deals)
SELECT day, manager_id, status, stages, COUNT(*) FROM (
    SELECT CAST(d.created_at / 86400000 AS BIGINT) AS day, d.manager_id, d.status,
           CASE WHEN d.status = 'won' THEN '[]' ELSE (SELECT json_group_array(s.stage ORDER BY s.stage) FROM crm_deal_stages s WHERE s.deal_id = d.deal_id) END AS stages
    FROM crm_deals d
) t
GROUP BY day, manager_id, status, stages;
