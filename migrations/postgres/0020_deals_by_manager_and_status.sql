-- A team's and a manager's repeat customers (issue 13): their won deals closed before the
-- period's end, per manager, read from the index alone. With (manager_id, closed_at) only,
-- PostgreSQL fetched every deal of the managers from the heap to test its status and customer:
-- 28 ms for a team at the bench's size, 0.8 ms with this index (docs/PERFORMANCE.md, "Cold
-- dashboards, 2026-12-08").
CREATE INDEX crm_deals_manager_status_closed ON crm_deals (manager_id, status, closed_at)
    INCLUDE (customer_id);
