-- A customer's balance alert subscriptions. `amount` is the threshold of balance_below,
-- the limit of debit_above and 0 for salary_received, so that the unique constraint also
-- refuses a second identical salary alert (NULLs would be distinct).
CREATE TABLE account_alerts (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('balance_below', 'debit_above', 'salary_received')),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    created_at BIGINT NOT NULL,
    CONSTRAINT account_alerts_unique UNIQUE (account_id, kind, amount)
);
-- The listener looks subscriptions up by the accounts a transfer touched (the unique
-- constraint's index starts with account_id); the API lists them by customer.
CREATE INDEX account_alerts_customer ON account_alerts (customer_id, id);
