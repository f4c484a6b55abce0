-- The dashboards keep call-quality figures between requests (issue 13, decision 0018): they
-- need to know when the rollups changed, whichever process wrote. Every refresh of a call's
-- rollups and every full rebuild adds one to `generation`, in the same transaction
-- (src/store/rollups.rs); src/store/memo.rs reads it before using what it kept.
CREATE TABLE rollup_stamp (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO rollup_stamp (id, generation) VALUES (1, 0);

-- A period of every manager's rollups is one range of this index (the primary key starts
-- with the manager, so the dashboards' company-wide reads probed it once per manager), and
-- the sums come from the index alone.
CREATE INDEX quality_daily_by_day ON quality_daily (day, criterion_id, manager_id, calls, rated, total, met);
