-- Search across calls (decision 0016): one row per transcript segment with its words' stems,
-- computed in Rust (src/search/terms.rs) so that both backends index exactly the same terms.
-- Written in the transcript's transaction; a call's deletion takes its rows along.
-- The call's manager and time are copied onto each row: a search filters and orders by them
-- without visiting the call of every match (neither changes after the upload).

-- A row's id is its place in the results (src/store/search.rs, row_key): the call's second,
-- its slot among that second's calls, the segment. FTS5 hands over matches in rowid order, so a
-- page of the newest hits is read without sorting every match of a common word.

CREATE TABLE search_segments (
    id          INTEGER PRIMARY KEY,           -- the row key, also the FTS index's rowid
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    segment     INTEGER NOT NULL,              -- index in the transcript's segments
    manager_id  TEXT NOT NULL,
    call_at     INTEGER NOT NULL,              -- the call's started_at, else its created_at
    speaker     TEXT NOT NULL CHECK (speaker IN ('manager', 'client', 'unknown')),
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    text        TEXT NOT NULL,                 -- as said, for the snippet
    stems       TEXT NOT NULL,                 -- the words' stems, separated by spaces
    UNIQUE (call_id, segment)
);

-- The stems are indexed as they are: the `ascii` tokenizer splits on ASCII spaces and
-- punctuation only (the stems hold letters and digits), and changes no non-ASCII letter.
-- Queries need every term of a segment, nothing about positions: detail=none keeps it small.
CREATE VIRTUAL TABLE search_fts USING fts5(
    stems,
    content = 'search_segments',
    content_rowid = 'id',
    tokenize = 'ascii',
    detail = 'none',
    columnsize = 0
);

-- An external-content FTS table follows its rows through triggers; they fire for the rows a
-- call's deletion cascades to as well.
CREATE TRIGGER search_segments_insert AFTER INSERT ON search_segments BEGIN
    INSERT INTO search_fts (rowid, stems) VALUES (new.id, new.stems);
END;
CREATE TRIGGER search_segments_delete AFTER DELETE ON search_segments BEGIN
    INSERT INTO search_fts (search_fts, rowid, stems) VALUES ('delete', old.id, old.stems);
END;
CREATE TRIGGER search_segments_update AFTER UPDATE ON search_segments BEGIN
    INSERT INTO search_fts (search_fts, rowid, stems) VALUES ('delete', old.id, old.stems);
    INSERT INTO search_fts (rowid, stems) VALUES (new.id, new.stems);
END;

-- Which transcripts the index holds, and by which version of the stemming: at start-up the
-- server indexes the others (saved before this migration, or stemmed by an older version).
CREATE TABLE search_indexed (
    call_id  TEXT PRIMARY KEY REFERENCES transcripts (call_id) ON DELETE CASCADE,
    version  INTEGER NOT NULL
);
