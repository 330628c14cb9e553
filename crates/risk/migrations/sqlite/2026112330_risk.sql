-- Adaptive security (crates/risk). Times are micros since the epoch; ids UUIDv7 text.
-- The policy by version; the newest is in force. Version 0 is the built-in default.
CREATE TABLE risk_policies (
    version BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL
);
-- Every decision with its inputs and the policy version, so it can be explained and
-- replayed. `op_key` is the operation's idempotency key when it has one.
CREATE TABLE risk_decisions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    op_key TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('allow', 'step_up', 'hold', 'deny')),
    factor TEXT,
    score BIGINT NOT NULL,
    anomaly TEXT,
    policy_version BIGINT NOT NULL,
    inputs TEXT NOT NULL,
    decision TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT risk_decisions_key UNIQUE (customer_id, op_key)
);
CREATE INDEX risk_decisions_recent ON risk_decisions (customer_id, operation, created_at);
-- Recent anomalies lower trust: counted from this partial index, not the whole history.
CREATE INDEX risk_decisions_anomalies ON risk_decisions (customer_id, created_at) WHERE anomaly IS NOT NULL;
CREATE TABLE risk_devices (
    customer_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    trusted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, device_id)
);
-- Per customer: where they were last seen (micro-degrees), their amounts, passed
-- step-ups, clean operations, and whether transfers are frozen.
CREATE TABLE risk_profiles (
    customer_id TEXT PRIMARY KEY,
    first_seen BIGINT NOT NULL,
    last_lat BIGINT,
    last_lon BIGINT,
    last_geo_at BIGINT,
    amount_count BIGINT NOT NULL DEFAULT 0,
    amount_sum BIGINT NOT NULL DEFAULT 0,
    amount_max BIGINT NOT NULL DEFAULT 0,
    clean_ops BIGINT NOT NULL DEFAULT 0,
    step_ups BIGINT NOT NULL DEFAULT 0,
    frozen BIGINT NOT NULL DEFAULT 0,
    frozen_at BIGINT
);
CREATE TABLE risk_hours (
    customer_id TEXT NOT NULL,
    hour BIGINT NOT NULL CHECK (hour BETWEEN 0 AND 23),
    n BIGINT NOT NULL,
    PRIMARY KEY (customer_id, hour)
);
CREATE TABLE risk_payees (
    customer_id TEXT NOT NULL,
    payee TEXT NOT NULL,
    first_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, payee)
);
CREATE TABLE risk_failures (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX risk_failures_recent ON risk_failures (customer_id, at);
-- Delayed (kind `delay`, state `waiting` until `due_at`) and held (kind `anomaly` or
-- `sign_in`, state `held` until the customer answers) operations. A transfer's hold has
-- the ledger transfer's id. The settlement tick claims due rows with a lease.
CREATE TABLE risk_holds (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('delay', 'anomaly', 'sign_in')),
    state TEXT NOT NULL CHECK (state IN ('waiting', 'held', 'settled', 'cancelled', 'released', 'voided')),
    amount BIGINT,
    anomaly TEXT,
    due_at BIGINT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX risk_holds_due ON risk_holds (state, due_at);
CREATE INDEX risk_holds_customer ON risk_holds (customer_id, id);
CREATE TABLE risk_cases (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    hold_id TEXT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
    assignee TEXT,
    summary TEXT NOT NULL,
    resolution TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX risk_cases_state ON risk_cases (state, id);
CREATE TABLE risk_case_notes (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX risk_case_notes_case ON risk_case_notes (case_id, id);
