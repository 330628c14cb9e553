-- Step-up factors (crates/stepup): challenges, single-use tokens, transaction PINs, TOTP
-- secrets, failure counters, every attempt, and the outbox of the built-in code sender.

CREATE TABLE step_up_challenges (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    reference TEXT,
    factor TEXT NOT NULL,
    -- SHA-256 over the challenge id and the sent code (factor sms only).
    code_digest TEXT,
    -- WebAuthn authentication state (factor passkey only).
    passkey_state TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    verified_at BIGINT
);
CREATE INDEX step_up_challenges_customer ON step_up_challenges (customer_id, created_at);

CREATE TABLE step_up_tokens (
    token_hash TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    reference TEXT,
    factor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    CONSTRAINT step_up_tokens_challenge_unique UNIQUE (challenge_id)
);

CREATE TABLE step_up_pins (
    customer_id TEXT PRIMARY KEY,
    pin_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE step_up_totp (
    customer_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    confirmed BIGINT NOT NULL DEFAULT 0,
    last_step BIGINT,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT
);

CREATE TABLE step_up_failures (
    customer_id TEXT NOT NULL,
    factor TEXT NOT NULL,
    failures BIGINT NOT NULL,
    locked_until BIGINT,
    PRIMARY KEY (customer_id, factor)
);

CREATE TABLE step_up_attempts (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    factor TEXT NOT NULL,
    action TEXT NOT NULL,
    challenge_id TEXT,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX step_up_attempts_customer ON step_up_attempts (customer_id, at);

CREATE TABLE step_up_outbox (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
