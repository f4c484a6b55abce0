-- CRM data (the contract: docs/crm-data.md; loaded by `callgrade import` and /api/v1/import):
-- managers, customers, leads, deals, deal stages, activities and plans, upserted by the
-- contract's keys. Timestamps are Unix ms (UTC, offsets normalised on import); plan periods are
-- dates (YYYY-MM-DD, period_end inclusive). The indexes serve the KPI queries: every figure
-- filters one table by a time range, optionally per manager.

CREATE TABLE crm_managers (
    manager_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    team       TEXT,
    email      TEXT
);
CREATE INDEX crm_managers_team ON crm_managers (team, manager_id);

CREATE TABLE crm_customers (
    customer_id TEXT PRIMARY KEY,
    name        TEXT,
    segment     TEXT
);

CREATE TABLE crm_leads (
    lead_id           TEXT PRIMARY KEY,
    created_at        INTEGER NOT NULL,
    source            TEXT,
    manager_id        TEXT,
    first_response_at INTEGER,
    mql_at            INTEGER,
    sql_at            INTEGER,
    customer_id       TEXT
);
CREATE INDEX crm_leads_created ON crm_leads (created_at);
CREATE INDEX crm_leads_manager_created ON crm_leads (manager_id, created_at);

CREATE TABLE crm_deals (
    deal_id     TEXT PRIMARY KEY,
    manager_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    customer_id TEXT,
    lead_id     TEXT,
    closed_at   INTEGER,
    amount      REAL,
    currency    TEXT,
    lost_reason TEXT
);
CREATE INDEX crm_deals_created ON crm_deals (created_at);
CREATE INDEX crm_deals_closed ON crm_deals (closed_at);
CREATE INDEX crm_deals_manager_created ON crm_deals (manager_id, created_at);
CREATE INDEX crm_deals_manager_closed ON crm_deals (manager_id, closed_at);
CREATE INDEX crm_deals_customer ON crm_deals (customer_id, status);

CREATE TABLE crm_deal_stages (
    deal_id    TEXT NOT NULL,
    stage      TEXT NOT NULL,
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (deal_id, stage)
);

CREATE TABLE crm_activities (
    activity_id TEXT PRIMARY KEY,
    manager_id  TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('call', 'email', 'meeting', 'demo', 'proposal', 'message')),
    at          INTEGER NOT NULL,
    deal_id     TEXT,
    outcome     TEXT CHECK (outcome IN ('productive', 'unproductive')),
    duration_s  INTEGER
);
CREATE INDEX crm_activities_at ON crm_activities (at);
CREATE INDEX crm_activities_manager_at ON crm_activities (manager_id, at);
CREATE INDEX crm_activities_deal ON crm_activities (deal_id);

CREATE TABLE crm_plans (
    manager_id   TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL,
    metric       TEXT NOT NULL CHECK (metric IN ('calls', 'emails', 'meetings', 'demos', 'proposals', 'messages', 'deals_won', 'revenue')),
    target       REAL NOT NULL,
    PRIMARY KEY (manager_id, period_start, period_end, metric)
);

-- Quality reports: conversation figures of each transcribed call, copied out of the transcript
-- document when it is saved, so reports average them without parsing JSON per call.
CREATE TABLE call_conversation (
    call_id                     TEXT PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    manager_talk_share          REAL,
    manager_questions           REAL NOT NULL,
    manager_longest_monologue_s REAL,
    duration_s                  REAL NOT NULL
);
-- Reports select a manager's calls by when they took place.
CREATE INDEX calls_manager_time ON calls (manager_id, COALESCE(started_at, created_at));
-- Quality-vs-outcome insights join calls to CRM deals.
CREATE INDEX calls_deal ON calls (deal_id);
