-- Passkeys (WebAuthn) as a step-up factor: registered credentials and registrations in
-- progress. The credential is webauthn-rs's serialised Passkey (public key, counter).

CREATE TABLE step_up_passkeys (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    CONSTRAINT step_up_passkeys_credential_unique UNIQUE (credential_id)
);
CREATE INDEX step_up_passkeys_customer ON step_up_passkeys (customer_id);

CREATE TABLE step_up_passkey_registrations (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT
);
