-- Foundation schema: calls, the job queue and API tokens.
-- Timestamps are Unix milliseconds (UTC) so both backends share one representation.

CREATE TABLE calls (
    id                TEXT PRIMARY KEY,            -- UUIDv7: time-ordered, used for keyset pagination
    manager_id        TEXT NOT NULL,
    deal_id           TEXT,
    customer_id       TEXT,
    direction         TEXT CHECK (direction IN ('inbound', 'outbound')),
    started_at        BIGINT,
    language          TEXT NOT NULL DEFAULT 'auto',
    channels          TEXT NOT NULL DEFAULT 'manager,client',
    original_filename TEXT,
    content_type      TEXT,
    size_bytes        BIGINT NOT NULL,
    sha256            TEXT NOT NULL,
    storage_key       TEXT NOT NULL,
    status            TEXT NOT NULL,
    failure_reason    TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (manager_id, sha256)
);
CREATE INDEX calls_manager_id ON calls (manager_id, id);
CREATE INDEX calls_status ON calls (status, id);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    call_id      TEXT REFERENCES calls (id) ON DELETE CASCADE,
    payload      TEXT NOT NULL DEFAULT '{}',
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'dead', 'cancelled')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_until  BIGINT,
    worker_id    TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    started_at   BIGINT,
    finished_at  BIGINT
);
-- The claim scans only claimable rows of one kind, oldest first.
CREATE INDEX jobs_claim ON jobs (kind, state, run_at);
CREATE INDEX jobs_call ON jobs (call_id);
-- One live job per (call, kind): a stage is never queued twice for the same call.
CREATE UNIQUE INDEX jobs_one_live_per_call_kind ON jobs (call_id, kind)
    WHERE state IN ('queued', 'running');

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'qa', 'head', 'manager')),
    manager_id  TEXT,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at  BIGINT,
    CHECK ((role = 'manager') = (manager_id IS NOT NULL))
);
