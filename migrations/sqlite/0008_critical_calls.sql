-- The calls list's "critical failure" filter (issue 12): few calls have one, so walking every
-- call newest first to find them reads the whole table (5 s on SQLite with 1M calls). This
-- index holds only the calls that do, in id order; the list starts from it
-- (src/store/calls.rs, `list_call_rows`). The condition is a literal on both sides: SQLite uses
-- a partial index only for a query that repeats it.
CREATE INDEX scores_critical ON scores (call_id) WHERE critical_failures > 0;
