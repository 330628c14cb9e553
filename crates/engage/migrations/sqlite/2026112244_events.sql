-- Behaviour events (crates/engage/src/events). Same file name and shape on PostgreSQL.

-- One row per event a customer's channels reported, or a ledger posting to one of their
-- accounts. Ingest is idempotent on (customer_id, event_id): a resend does nothing.
CREATE TABLE behaviour_events (
    -- Arrival order across all customers; per customer it orders "my recent events".
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL,
    -- The client's event id (1-128 visible ASCII), or ledger:{transfer_id}:{account}.
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    -- app | h5 | mini_program | wechat_oa | web, or ledger for postings.
    channel TEXT NOT NULL,
    -- When it happened (client's claim), microseconds since the epoch.
    at INTEGER NOT NULL,
    -- When the server stored it, microseconds since the epoch.
    received_at INTEGER NOT NULL,
    -- A JSON object, at most 4 KB.
    properties TEXT NOT NULL,
    CONSTRAINT behaviour_events_customer_event UNIQUE (customer_id, event_id)
);

CREATE INDEX behaviour_events_customer_seq ON behaviour_events (customer_id, seq);
