-- Accounts carry their balances, updated in the same transaction as the entries that
-- explain them; the entries stay the source of truth the invariant check compares with.
CREATE TABLE ledger_accounts (
    id TEXT PRIMARY KEY,
    unit TEXT NOT NULL CHECK (unit IN ('CNY', 'POINTS')),
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('customer', 'campaign', 'bank')),
    owner_id TEXT NOT NULL,
    account_type TEXT NOT NULL
        CHECK (account_type IN ('current', 'savings', 'goal_pocket', 'points', 'budget', 'clearing')),
    label TEXT,
    external_ref TEXT,
    allow_negative INTEGER NOT NULL,
    max_balance INTEGER,
    posted INTEGER NOT NULL DEFAULT 0,
    pending_out INTEGER NOT NULL DEFAULT 0 CHECK (pending_out >= 0),
    pending_in INTEGER NOT NULL DEFAULT 0 CHECK (pending_in >= 0),
    created_at INTEGER NOT NULL,
    CONSTRAINT ledger_accounts_external_ref UNIQUE (external_ref)
);
CREATE INDEX ledger_accounts_owner ON ledger_accounts (owner_kind, owner_id);

CREATE TABLE ledger_transfers (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    unit TEXT NOT NULL,
    two_phase INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'posted', 'voided')),
    void_reason TEXT,
    description TEXT,
    merchant_category TEXT,
    channel TEXT,
    event_id TEXT,
    metadata TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    posted_at INTEGER,
    voided_at INTEGER,
    CONSTRAINT ledger_transfers_idempotency UNIQUE (scope, idem_key)
);
-- The sweeper's work list: only holds that are still open.
CREATE INDEX ledger_transfers_expiry ON ledger_transfers (expires_at) WHERE status = 'pending';

CREATE TABLE ledger_legs (
    transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
    leg INTEGER NOT NULL,
    debit_account TEXT NOT NULL REFERENCES ledger_accounts (id),
    credit_account TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    PRIMARY KEY (transfer_id, leg),
    CHECK (debit_account <> credit_account)
);

-- Two signed entries per posted leg; they sum to zero per unit.
CREATE TABLE ledger_entries (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
    transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
    leg INTEGER NOT NULL,
    unit TEXT NOT NULL,
    amount INTEGER NOT NULL CHECK (amount <> 0),
    merchant_category TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, id);
CREATE INDEX ledger_entries_account_at ON ledger_entries (account_id, at);

-- Posted value is immutable: corrections are new transfers, never edits.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END;
CREATE TRIGGER ledger_legs_no_update BEFORE UPDATE ON ledger_legs
BEGIN SELECT RAISE(ABORT, 'ledger legs are immutable'); END;
CREATE TRIGGER ledger_legs_no_delete BEFORE DELETE ON ledger_legs
BEGIN SELECT RAISE(ABORT, 'ledger legs are immutable'); END;
