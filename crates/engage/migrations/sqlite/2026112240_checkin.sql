-- Daily check-in (crates/engage/src/checkin). Same file name and shape on PostgreSQL.

-- One row per customer who has used check-in: the row each check-in locks (so a customer's
-- check-ins and make-ups apply one at a time) and the make-up cards used this month.
CREATE TABLE checkin_customers (
    customer_id TEXT PRIMARY KEY,
    -- YYYY-MM (customer's time zone) that cards_used counts; another month means none used.
    cards_month TEXT NOT NULL DEFAULT '',
    cards_used INTEGER NOT NULL DEFAULT 0 CHECK (cards_used >= 0),
    updated_at INTEGER NOT NULL
);

CREATE TABLE checkins (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    -- The customer's local calendar date, YYYY-MM-DD (sorts as text).
    local_date TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('checkin', 'makeup')),
    -- UTC instant of the request, microseconds since the epoch.
    at INTEGER NOT NULL,
    -- Length of the run ending at local_date when the row was written.
    streak_after INTEGER NOT NULL CHECK (streak_after >= 1),
    CONSTRAINT checkins_customer_day UNIQUE (customer_id, local_date)
);

-- Rewards planned in the same transaction as the check-in that earns them, then posted
-- to the ledger under the key checkin/{customer}:{local_date}:{reason}; transfer_id is
-- set once posted, so a row without it is a reward still owed.
CREATE TABLE checkin_rewards (
    customer_id TEXT NOT NULL,
    -- The day the reward is for: the check-in day, or the day a run reached a milestone.
    local_date TEXT NOT NULL,
    -- base | streak-<days>
    reason TEXT NOT NULL,
    -- Milestone length, 0 for the base reward.
    streak_days INTEGER NOT NULL DEFAULT 0,
    points INTEGER NOT NULL CHECK (points > 0),
    -- The check-in or make-up day whose request earned it.
    source_date TEXT NOT NULL,
    transfer_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, local_date, reason)
);

CREATE INDEX checkin_rewards_owed ON checkin_rewards (customer_id) WHERE transfer_id IS NULL;
