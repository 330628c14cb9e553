-- How far the ledger's postings have been swept into behaviour events
-- (`EventsService::sweep_postings`): every posting up to (swept_at, swept_id), in the
-- ledger's posted order, has its events. One row, named 'ledger'. Same on both backends.
CREATE TABLE posting_sweeps (
    name TEXT PRIMARY KEY,
    -- A posted_at, microseconds since the epoch.
    swept_at BIGINT NOT NULL,
    -- The last transfer id swept at that instant ('' for none).
    swept_id TEXT NOT NULL
);
