-- Accounts for the web app: people who sign in with a password, and their browser sessions.
-- API tokens (0001) stay as they are: the API accepts only bearer tokens.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,             -- UUIDv7
    username            TEXT NOT NULL UNIQUE,         -- stored lower-case
    password_hash       TEXT NOT NULL,                -- argon2id, PHC string
    role                TEXT NOT NULL CHECK (role IN ('admin', 'qa', 'head', 'manager')),
    manager_id          TEXT,
    language            TEXT CHECK (language IN ('ru', 'en')), -- chosen in the UI; NULL: the browser's
    created_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL,
    disabled_at         BIGINT,
    CHECK ((role = 'manager') = (manager_id IS NOT NULL))
);

-- Only a SHA-256 of each session's secret is stored: a copy of the database signs nobody in.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);
