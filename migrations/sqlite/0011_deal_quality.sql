-- Call quality per CRM deal (issue 13): "quality vs outcome" reads the month's closed deals
-- with one row per deal and criterion instead of every score and criterion of their calls.
-- Kept like quality_daily: the store recomputes a deal's rows from the raw tables whenever a
-- score of one of its calls is written or corrected, or one of its calls is deleted
-- (src/store/rollups.rs, `refresh_deal_quality`; a deal's calls come from index calls_deal).
--
-- criterion_id '' holds the deal's overall scores: calls = its scored calls, rated = those with
-- an overall, total = their sum. A criterion's row: calls = its scored calls with that
-- criterion, rated = those where it applied (met is not null), met = those where it was met.
CREATE TABLE deal_quality (
    deal_id      TEXT NOT NULL,
    criterion_id TEXT NOT NULL,
    calls        BIGINT NOT NULL,
    rated        BIGINT NOT NULL,
    total        DOUBLE PRECISION NOT NULL,
    met          BIGINT NOT NULL,
    PRIMARY KEY (deal_id, criterion_id)
);

INSERT INTO deal_quality (deal_id, criterion_id, calls, rated, total, met)
SELECT c.deal_id, '', COUNT(*), COUNT(s.overall), COALESCE(SUM(s.overall), 0), 0
FROM calls c JOIN scores s ON s.call_id = c.id
WHERE s.status = 'scored' AND c.deal_id IS NOT NULL
GROUP BY c.deal_id;

INSERT INTO deal_quality (deal_id, criterion_id, calls, rated, total, met)
SELECT c.deal_id, sc.criterion_id, COUNT(*), COUNT(sc.met), 0,
       COUNT(CASE WHEN sc.met = 1 THEN 1 END)
FROM calls c JOIN scores s ON s.call_id = c.id JOIN score_criteria sc ON sc.call_id = c.id
WHERE s.status = 'scored' AND c.deal_id IS NOT NULL
GROUP BY c.deal_id, sc.criterion_id;
