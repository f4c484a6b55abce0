-- The dashboards at deployment size (issue 13).
-- The open deals' model is kept between requests and read again only when a CRM file was
-- imported or a score written: "the latest score written" must be one index probe, not a scan
-- of every score (src/store/deals.rs, `deal_stamp`).
CREATE INDEX scores_updated ON scores (updated_at);
-- A deal's activities, counted and dated up to its close, from the index alone.
DROP INDEX crm_activities_deal;
CREATE INDEX crm_activities_deal ON crm_activities (deal_id, at);
