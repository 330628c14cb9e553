-- Posted transfers in the order they were posted, for capabilities that catch up on
-- postings their in-memory subscription missed (a crash between a commit and its
-- announcement): `Ledger::posted_since`. Same on both backends.
CREATE INDEX ledger_transfers_posted ON ledger_transfers (posted_at, id) WHERE status = 'posted';
