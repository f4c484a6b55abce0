-- Each deal's call quality summed over the managers of its calls (issue 13): quality vs
-- outcome reads one row per closed deal and criterion instead of summing deal_quality's rows,
-- one per deal, manager of the calls and criterion. Kept beside deal_quality: the store writes
-- a deal's rows of both tables together (src/store/rollups.rs, `refresh_deal_quality`, and the
-- full rebuild holds the same statement as this backfill). criterion_id '' holds the overall
-- scores, as in deal_quality.
CREATE TABLE deal_quality_total (
    deal_id      TEXT NOT NULL,
    criterion_id TEXT NOT NULL,
    calls        BIGINT NOT NULL,
    rated        BIGINT NOT NULL,
    total        DOUBLE PRECISION NOT NULL,
    met          BIGINT NOT NULL,
    -- The figures ride in the key's index: a closed deal's rows are read from it alone.
    PRIMARY KEY (deal_id, criterion_id) INCLUDE (calls, rated, total, met)
);

INSERT INTO deal_quality_total (deal_id, criterion_id, calls, rated, total, met)
SELECT deal_id, criterion_id, SUM(calls), SUM(rated), SUM(total), SUM(met)
FROM deal_quality GROUP BY deal_id, criterion_id;
