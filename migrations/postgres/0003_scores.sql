-- Scores: one scorecard per call (a rescore replaces it), the criteria beside it in rows that
-- reports aggregate on, and the scorecard versions every score points to.
-- The document holds everything a reader sees (rationales, evidence with verification,
-- coaching, next steps, provenance); the columns are what reports filter and aggregate on.

CREATE TABLE rubrics (
    id           TEXT NOT NULL,
    language     TEXT NOT NULL,
    version      BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    source       TEXT NOT NULL,              -- the scorecard's TOML, as loaded
    origin       TEXT NOT NULL,              -- 'builtin', a file path, or 'api'
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (id, language, version),
    UNIQUE (id, language, content_hash)
);

CREATE TABLE scores (
    call_id           TEXT PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    status            TEXT NOT NULL CHECK (status IN ('scored', 'not_scorable')),
    rubric_id         TEXT NOT NULL,
    rubric_language   TEXT NOT NULL,
    rubric_version    BIGINT NOT NULL,
    overall           DOUBLE PRECISION,                  -- 0..100, weighted; after QA corrections
    model_overall     DOUBLE PRECISION,                  -- 0..100 as the model answered
    confidence        DOUBLE PRECISION,                  -- 0..1
    critical_failures BIGINT NOT NULL DEFAULT 0,
    language          TEXT NOT NULL,
    reason            TEXT,                  -- why the call is not scorable
    document          TEXT NOT NULL,
    scored_at         BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX scores_rubric ON scores (rubric_id, rubric_version);

-- One row per criterion of a scored call. `value` is the answer normalised to 0..1 (NULL when
-- not applicable); `met` = the effective level is 'strong'. QA corrections sit beside the
-- model's answer, which is never overwritten; `value`, `level`, `met` are the effective ones.
CREATE TABLE score_criteria (
    call_id        TEXT NOT NULL REFERENCES scores (call_id) ON DELETE CASCADE,
    criterion_id   TEXT NOT NULL,
    section_id     TEXT NOT NULL,
    weight         DOUBLE PRECISION NOT NULL,
    critical       BIGINT NOT NULL,
    scale_max      BIGINT NOT NULL,
    model_answer   BIGINT,
    model_level    TEXT NOT NULL CHECK (model_level IN ('strong', 'weak', 'absent', 'na')),
    qa_answer      BIGINT,
    qa_level       TEXT CHECK (qa_level IN ('strong', 'weak', 'absent', 'na')),
    qa_comment     TEXT,
    qa_by          TEXT,
    qa_at          BIGINT,
    value          DOUBLE PRECISION,
    level          TEXT NOT NULL CHECK (level IN ('strong', 'weak', 'absent', 'na')),
    met            BIGINT,
    low_confidence BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (call_id, criterion_id)
);
CREATE INDEX score_criteria_criterion ON score_criteria (criterion_id, call_id);
CREATE INDEX score_criteria_qa ON score_criteria (qa_at) WHERE qa_at IS NOT NULL;
