-- Search across calls (decision 0016): one row per transcript segment with its words' stems,
-- computed in Rust (src/search/terms.rs) so that both backends index exactly the same terms.
-- Written in the transcript's transaction; a call's deletion takes its rows along.
-- The call's manager and time are copied onto each row: a search filters and orders by them
-- without visiting the call of every match (neither changes after the upload).

-- A row's id is its place in the results (src/store/search.rs, row_key): the call's second,
-- its slot among that second's calls, the segment. For a word found in a large share of
-- segments the planner walks the primary key from the newest and checks each row's terms,
-- which fills a page long before collecting every match would; for a rarer one, the GIN index.

CREATE TABLE search_segments (
    id          BIGINT PRIMARY KEY,            -- the row key
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    segment     BIGINT NOT NULL,               -- index in the transcript's segments
    manager_id  TEXT NOT NULL,
    call_at     BIGINT NOT NULL,               -- the call's started_at, else its created_at
    speaker     TEXT NOT NULL CHECK (speaker IN ('manager', 'client', 'unknown')),
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    text        TEXT NOT NULL,                 -- as said, for the snippet
    stems       TEXT NOT NULL,                 -- the words' stems, separated by spaces
    -- The stems as lexemes, as they are: array_to_tsvector applies no parser or dictionary
    -- (to_tsvector would split them by PostgreSQL's own word rules).
    terms       tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(stems, ' '))) STORED,
    UNIQUE (call_id, segment)
);
CREATE INDEX search_segments_terms ON search_segments USING GIN (terms);

-- Which transcripts the index holds, and by which version of the stemming: at start-up the
-- server indexes the others (saved before this migration, or stemmed by an older version).
CREATE TABLE search_indexed (
    call_id  TEXT PRIMARY KEY REFERENCES transcripts (call_id) ON DELETE CASCADE,
    version  BIGINT NOT NULL
);
