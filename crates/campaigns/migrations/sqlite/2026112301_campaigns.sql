-- Campaigns and their rules (crates/campaigns). Same file name and shape on PostgreSQL.

-- A campaign: titles per locale, a theme, a time window, an audience (a CEL expression over
-- `customer`, empty = everyone) and budgets. `state` is what staff set (draft, scheduled,
-- ended); live and ended-by-the-clock are read from the window (see campaigns::domain).
CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    titles TEXT NOT NULL,
    theme TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    audience TEXT NOT NULL,
    points_cap INTEGER NOT NULL CHECK (points_cap >= 0),
    points_used INTEGER NOT NULL DEFAULT 0,
    coupon_cap INTEGER NOT NULL CHECK (coupon_cap >= 0),
    coupons_used INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('draft', 'scheduled', 'ended')),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- Budget use never passes the cap: the award and this update commit together.
    CHECK (points_used >= 0 AND points_used <= points_cap),
    CHECK (coupons_used >= 0 AND coupons_used <= coupon_cap)
);

-- A rule: trigger event type, CEL condition, optional windowed aggregate, actions (JSON).
CREATE TABLE campaign_rules (
    id TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (id),
    name TEXT NOT NULL,
    trigger_type TEXT NOT NULL,
    condition TEXT NOT NULL,
    aggregate_count INTEGER,
    aggregate_days INTEGER,
    max_per_customer INTEGER,
    actions TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX campaign_rules_campaign ON campaign_rules (campaign_id);

-- Each (rule, event) is applied at most once: this row commits with its effects.
CREATE TABLE rule_firings (
    rule_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    customer_id TEXT NOT NULL,
    -- applied | budget_exhausted | limit_reached
    outcome TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (rule_id, event_seq)
);

-- Per (rule, customer): times fired and the last event that fired it (windows restart there).
CREATE TABLE rule_customer_state (
    rule_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    fired INTEGER NOT NULL,
    last_fired_seq INTEGER NOT NULL,
    PRIMARY KEY (rule_id, customer_id)
);

-- Matching events of windowed rules, counted per customer in a sliding window.
CREATE TABLE rule_window_hits (
    rule_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (rule_id, event_seq)
);
CREATE INDEX rule_window_hits_customer ON rule_window_hits (customer_id, at);

-- Per customer and event type: events seen by the rules consumer (`counters` in CEL).
CREATE TABLE customer_counters (
    customer_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (customer_id, name)
);

-- What a rule (or a task claim) did for a customer, and why: GET /api/v1/me/effects.
CREATE TABLE campaign_effects (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    rule_id TEXT,
    event_seq INTEGER,
    event_id TEXT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX campaign_effects_customer ON campaign_effects (customer_id, id);

-- Next-step prompts for the page; dismissable.
CREATE TABLE nudges (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    action_url TEXT,
    created_at INTEGER NOT NULL,
    dismissed_at INTEGER,
    CONSTRAINT nudges_rule_event UNIQUE (rule_id, event_seq)
);
CREATE INDEX nudges_customer ON nudges (customer_id, id);

-- Customer tags for audiences (e.g. new_customer, payroll), set by staff or imports.
CREATE TABLE customer_tags (
    customer_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
