-- Transcripts: one per call, replaced when the call is transcribed again.
-- The document (segments with words, metrics, processing figures) is JSON: it is always read
-- whole, by call. The columns beside it are what reports filter and aggregate on.

CREATE TABLE transcripts (
    call_id      TEXT PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    language     TEXT NOT NULL,
    model        TEXT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    speech_ms    BIGINT NOT NULL,
    words        BIGINT NOT NULL,
    document     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
