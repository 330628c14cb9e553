CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    phone TEXT NOT NULL,
    name TEXT NOT NULL,
    birthday TEXT,
    locale TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    preferences TEXT NOT NULL,
    password_hash TEXT,
    idp_subject TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT customers_phone_unique UNIQUE (phone),
    CONSTRAINT customers_idp_subject_unique UNIQUE (idp_subject)
);

CREATE TABLE staff_users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    CONSTRAINT staff_users_username_unique UNIQUE (username)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_principal ON sessions (principal_id);

CREATE TABLE handoff_tokens (
    token_hash TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    from_channel TEXT NOT NULL,
    target_channel TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE staff_access_log (
    id TEXT PRIMARY KEY,
    staff_id TEXT NOT NULL,
    action TEXT NOT NULL,
    customer_id TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX staff_access_log_customer ON staff_access_log (customer_id);
