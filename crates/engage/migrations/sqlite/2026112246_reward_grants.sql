-- Granted rewards (crates/engage/src/rewards): a prize issued by a rule, an invite unlock
-- or a team challenge is a claim that charged no points, so a claim's points may now be 0.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with its rows.
CREATE TABLE reward_claims_new (
    id TEXT PRIMARY KEY,
    reward_id TEXT NOT NULL REFERENCES rewards (id),
    customer_id TEXT NOT NULL,
    -- The client's Idempotency-Key (ledger key of the points hold, scope reward:{customer}),
    -- or the key a grant was derived from.
    idem_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('reserved', 'claimed', 'released')),
    -- Price at the time of the claim (0 for a grant): the hold is rebuilt from this row alone.
    points INTEGER NOT NULL CHECK (points >= 0),
    code TEXT NOT NULL,
    failure TEXT,
    transfer_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    claimed_at INTEGER,
    valid_until INTEGER,
    CONSTRAINT reward_claims_customer_key UNIQUE (customer_id, idem_key),
    CONSTRAINT reward_claims_code UNIQUE (code)
);
INSERT INTO reward_claims_new SELECT id, reward_id, customer_id, idem_key, state, points, code, failure,
    transfer_id, created_at, updated_at, claimed_at, valid_until FROM reward_claims;
DROP TABLE reward_claims;
ALTER TABLE reward_claims_new RENAME TO reward_claims;
CREATE INDEX reward_claims_by_customer ON reward_claims (customer_id, id);
CREATE INDEX reward_claims_stale ON reward_claims (updated_at) WHERE state = 'reserved';
