-- A version per customer, raised in the same transaction as every write that changes
-- what the engine reads about them (decisions, profile, hours, payees, devices,
-- failures, freezes). A node keeps each customer's facts in memory with the version it
-- read them at, and reads only this number (with the operation's idempotency key) before
-- a transfer: a different number means another node (or another writer) changed them.
CREATE TABLE risk_stamps (
    customer_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
-- The decisions a retry must get back (step-ups, refusals, holds; delays are found through
-- their hold), read with a customer's facts: indexed apart from the many plain allows.
CREATE INDEX risk_decisions_not_allowed ON risk_decisions (customer_id, created_at) WHERE outcome <> 'allow';
