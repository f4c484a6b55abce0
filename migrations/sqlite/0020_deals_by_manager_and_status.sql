-- A team's and a manager's repeat customers (issue 13): their won deals closed before the
-- period's end, per manager, read from the index alone (see the PostgreSQL file; SQLite has
-- no INCLUDE, so the customer is the last key column).
CREATE INDEX crm_deals_manager_status_closed ON crm_deals (manager_id, status, closed_at, customer_id);
