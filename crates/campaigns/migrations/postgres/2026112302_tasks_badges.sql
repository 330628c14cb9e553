-- Tasks, badges (crates/campaigns). Same file name and shape on SQLite.

-- A task: count `event_type` events (matching `filter`, CEL) up to `target` per period
-- (once, daily, weekly in the customer's time zone); a reward to claim when done.
CREATE TABLE campaign_tasks (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    titles TEXT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('once', 'daily', 'weekly')),
    event_type TEXT NOT NULL,
    filter TEXT NOT NULL,
    target BIGINT NOT NULL CHECK (target > 0),
    reward_points BIGINT NOT NULL CHECK (reward_points >= 0),
    reward_coupon TEXT,
    created_at BIGINT NOT NULL
);

-- Progress per customer and period ('' for once, 2026-11-22 daily, 2026-W47 weekly).
CREATE TABLE task_progress (
    task_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    period_key TEXT NOT NULL,
    progress BIGINT NOT NULL,
    claimed_at BIGINT,
    PRIMARY KEY (task_id, customer_id, period_key)
);

-- A badge: criteria (event type + CEL filter, counted) and tiers (JSON [{name, threshold}]).
CREATE TABLE badges (
    id TEXT PRIMARY KEY,
    campaign_id TEXT,
    titles TEXT NOT NULL,
    event_type TEXT NOT NULL,
    filter TEXT NOT NULL,
    tiers TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE badge_progress (
    badge_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    progress BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (badge_id, customer_id)
);
