-- Speaker separation of mono calls (issue 16): a voice whose role is not known is stored as
-- speaker_1 .. speaker_4, in the transcript and in the search index. SQLite cannot change a
-- CHECK in place: the table is rebuilt under its name, its rows and the full-text index's
-- rowids kept (the index is external-content and only follows it through the triggers).

CREATE TABLE search_segments_new (
    id          INTEGER PRIMARY KEY,           -- the row key, also the FTS index's rowid
    call_id     TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    segment     INTEGER NOT NULL,              -- index in the transcript's segments
    manager_id  TEXT NOT NULL,
    call_at     INTEGER NOT NULL,              -- the call's started_at, else its created_at
    speaker     TEXT NOT NULL CHECK (speaker IN ('manager', 'client', 'unknown', 'speaker_1', 'speaker_2', 'speaker_3', 'speaker_4')),
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    text        TEXT NOT NULL,                 -- as said, for the snippet
    stems       TEXT NOT NULL,                 -- the words' stems, separated by spaces
    UNIQUE (call_id, segment)
);
INSERT INTO search_segments_new SELECT * FROM search_segments;
-- Dropping the old table drops its triggers; no row leaves the index meanwhile.
DROP TABLE search_segments;
ALTER TABLE search_segments_new RENAME TO search_segments;

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
