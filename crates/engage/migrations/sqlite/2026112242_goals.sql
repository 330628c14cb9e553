-- Savings goals (crates/engage/src/goals). Same file name and shape on PostgreSQL.

-- A goal: its target, its plan's inputs (fixed when the goal is made, so the plan does not
-- drift) and its ledger pocket. Money lives only in the pocket.
CREATE TABLE goals (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    category TEXT,
    target_amount INTEGER NOT NULL CHECK (target_amount > 0),
    -- YYYY-MM-DD in the owner's time zone.
    target_date TEXT NOT NULL,
    -- The owner's local date the goal was made: the plan starts here.
    plan_start TEXT NOT NULL,
    transfer_day INTEGER NOT NULL CHECK (transfer_day BETWEEN 1 AND 28),
    pocket_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT goals_pocket UNIQUE (pocket_id)
);

-- Who sees a goal and may pay into it: its owner and the partners they invited.
CREATE TABLE goal_members (
    goal_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'partner')),
    added_at INTEGER NOT NULL,
    PRIMARY KEY (goal_id, customer_id)
);
CREATE INDEX goal_members_customer ON goal_members (customer_id);

-- Who put what into the pocket, one row per ledger transfer (written by the deposit and by
-- the ledger listener; either may come first). customer_id is NULL for money that did not
-- come from a customer's account.
CREATE TABLE goal_contributions (
    goal_id TEXT NOT NULL,
    transfer_id TEXT NOT NULL,
    customer_id TEXT,
    amount INTEGER NOT NULL CHECK (amount > 0),
    at INTEGER NOT NULL,
    PRIMARY KEY (goal_id, transfer_id)
);

-- Milestones (percent of the target) whose message was delivered; never fired again.
CREATE TABLE goal_milestones (
    goal_id TEXT NOT NULL,
    pct INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    PRIMARY KEY (goal_id, pct)
);

-- The durable monthly reminder of each goal: due_at is the next reminder instant (UTC
-- micros). A node claims a due row by moving claimed_until into the future with its token;
-- another node skips it until that lease runs out (a crashed node's claim expires).
CREATE TABLE goal_reminders (
    goal_id TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    claim_token TEXT,
    updated_at INTEGER NOT NULL
);
CREATE INDEX goal_reminders_due ON goal_reminders (due_at);
