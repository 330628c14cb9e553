-- A version per customer, raised in the same transaction as every write that changes
-- what the engine reads about them (decisions, profile, hours, payees, devices,
-- failures, freezes). A node keeps each customer's facts in memory with the version it
-- read them at, and reads only this number (with the operation's idempotency key) before
-- a transfer: a different number means another node (or another writer) changed them.
CREATE TABLE risk_stamps (
    customer_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);
