-- deal_quality (0011) again, now per manager of the calls as well (issue 13): the open deals'
-- ranking reads each open deal's call quality from it instead of every score of their calls,
-- and a manager's own view counts only their own calls on a deal (issue 14), so the rows must
-- say whose calls they sum. The CRM may give a deal to another manager later, so "own" is
-- decided when read, against crm_deals.manager_id. manager_id '' = calls without a manager.
DROP TABLE deal_quality;
CREATE TABLE deal_quality (
    deal_id      TEXT NOT NULL,
    manager_id   TEXT NOT NULL,
    criterion_id TEXT NOT NULL,
    calls        BIGINT NOT NULL,
    rated        BIGINT NOT NULL,
    total        DOUBLE PRECISION NOT NULL,
    met          BIGINT NOT NULL,
    PRIMARY KEY (deal_id, manager_id, criterion_id)
);

INSERT INTO deal_quality (deal_id, manager_id, criterion_id, calls, rated, total, met)
SELECT c.deal_id, COALESCE(c.manager_id, ''), '', COUNT(*), COUNT(s.overall),
       COALESCE(SUM(s.overall), 0), 0
FROM calls c JOIN scores s ON s.call_id = c.id
WHERE s.status = 'scored' AND c.deal_id IS NOT NULL
GROUP BY c.deal_id, COALESCE(c.manager_id, '');

INSERT INTO deal_quality (deal_id, manager_id, criterion_id, calls, rated, total, met)
SELECT c.deal_id, COALESCE(c.manager_id, ''), sc.criterion_id, COUNT(*), COUNT(sc.met), 0,
       COUNT(CASE WHEN sc.met = 1 THEN 1 END)
FROM calls c JOIN scores s ON s.call_id = c.id JOIN score_criteria sc ON sc.call_id = c.id
WHERE s.status = 'scored' AND c.deal_id IS NOT NULL
GROUP BY c.deal_id, COALESCE(c.manager_id, ''), sc.criterion_id;
