-- Savings goals move by themselves (crates/engage/src/goals/automation.rs). Same file name
-- and shape on SQLite.

-- The automatic monthly transfer of a goal, while its owner has it turned on (turning it
-- off deletes the row). due_at is the next attempt (UTC micros) and month the month
-- (YYYY-MM in the owner's time zone) it pays for: that month is the ledger idempotency key
-- of the transfer, so a month is paid at most once whoever runs the job and however often.
-- attempts counts the month's attempts refused for want of money. A node claims a due row
-- by moving claimed_until into the future with its token, as goal reminders do.
CREATE TABLE goal_auto_transfers (
    goal_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    from_account TEXT NOT NULL,
    transfer_day BIGINT NOT NULL CHECK (transfer_day BETWEEN 1 AND 28),
    due_at BIGINT NOT NULL,
    month TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    claim_token TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX goal_auto_transfers_due ON goal_auto_transfers (due_at);

-- An offer to convert points into money for a savings goal: every `points` points become
-- `fen` fen in the goal's pocket, at most max_points per conversion. campaign_id: the
-- campaign that offers it (usable only while it is live for the customer); NULL: always.
CREATE TABLE goal_conversion_offers (
    id TEXT PRIMARY KEY,
    titles TEXT NOT NULL,
    campaign_id TEXT,
    points BIGINT NOT NULL CHECK (points > 0),
    fen BIGINT NOT NULL CHECK (fen > 0),
    max_points BIGINT NOT NULL CHECK (max_points >= points),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
