-- Rewards catalog, stock and claims (crates/engage/src/rewards). Same file name and shape on PostgreSQL.

CREATE TABLE rewards (
    id TEXT PRIMARY KEY,
    -- JSON object locale -> title, e.g. {"zh-CN": "咖啡券", "en": "Coffee voucher"}.
    titles TEXT NOT NULL,
    points_price INTEGER NOT NULL CHECK (points_price > 0),
    per_customer_limit INTEGER NOT NULL CHECK (per_customer_limit > 0),
    -- Claimable from (inclusive) until (exclusive), microseconds since the epoch (UTC).
    claimable_from INTEGER NOT NULL,
    claimable_until INTEGER NOT NULL,
    coupon_valid_days INTEGER NOT NULL CHECK (coupon_valid_days > 0),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CHECK (claimable_until > claimable_from)
);

CREATE INDEX rewards_window ON rewards (claimable_until, claimable_from);

-- The one row a claim contends on. Reservations count as taken, so the guarded update
-- "reserved + 1 WHERE claimed + reserved < total" can never hand out more than total; the
-- CHECK is the last line of defence if a future query forgets the guard.
CREATE TABLE reward_stock (
    reward_id TEXT PRIMARY KEY REFERENCES rewards (id),
    total INTEGER NOT NULL CHECK (total > 0),
    claimed INTEGER NOT NULL DEFAULT 0 CHECK (claimed >= 0),
    reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    CONSTRAINT reward_stock_not_oversold CHECK (claimed + reserved <= total)
);

-- Claims a customer holds (reserved or claimed) per reward, kept by a guarded upsert so
-- the per-customer limit holds under concurrent claims without a read-then-write race.
CREATE TABLE reward_holders (
    reward_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    held INTEGER NOT NULL CHECK (held >= 0),
    PRIMARY KEY (reward_id, customer_id)
);

CREATE TABLE reward_claims (
    id TEXT PRIMARY KEY,
    reward_id TEXT NOT NULL REFERENCES rewards (id),
    customer_id TEXT NOT NULL,
    -- The client's Idempotency-Key; also the ledger key of the points hold (scope reward:{customer}).
    idem_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('reserved', 'claimed', 'released')),
    -- Price at the time of the claim: the hold is rebuilt from this row alone.
    points INTEGER NOT NULL CHECK (points > 0),
    code TEXT NOT NULL,
    -- Problem slug of a released claim, answered again on replay.
    failure TEXT,
    transfer_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    claimed_at INTEGER,
    valid_until INTEGER,
    CONSTRAINT reward_claims_customer_key UNIQUE (customer_id, idem_key),
    CONSTRAINT reward_claims_code UNIQUE (code)
);

CREATE INDEX reward_claims_by_customer ON reward_claims (customer_id, id);
CREATE INDEX reward_claims_stale ON reward_claims (updated_at) WHERE state = 'reserved';
