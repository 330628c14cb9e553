-- Invite programmes, invite codes and attributions (crates/social/src/invites).
-- Same file name and shape on SQLite. Times are microseconds since the epoch (UTC).

CREATE TABLE invite_programmes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- Connected to a campaign by the integrator; free text until campaigns exist.
    campaign_id TEXT,
    -- The event an invitee must produce, e.g. questionnaire_completed, and a JSON object
    -- of properties it must carry (e.g. {"questionnaire_id": "risk-appetite"}).
    event_type TEXT NOT NULL,
    event_match TEXT NOT NULL,
    unlock_count BIGINT NOT NULL CHECK (unlock_count > 0),
    -- Most invitees one inviter may bring into the programme.
    max_invitees BIGINT NOT NULL CHECK (max_invitees >= unlock_count),
    -- The prize: points or a catalog reward, exactly one.
    reward_points BIGINT,
    reward_id TEXT,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (ends_at > starts_at),
    CHECK ((reward_points IS NULL) <> (reward_id IS NULL))
);

CREATE TABLE invite_codes (
    code TEXT PRIMARY KEY,
    programme_id TEXT NOT NULL REFERENCES invite_programmes (id),
    inviter_id TEXT NOT NULL,
    -- Invitees who accepted, and those of them who did the qualifying action.
    accepted BIGINT NOT NULL DEFAULT 0 CHECK (accepted >= 0),
    qualified BIGINT NOT NULL DEFAULT 0 CHECK (qualified >= 0),
    created_at BIGINT NOT NULL,
    -- Set once when qualified reaches the programme's unlock count; the prize is owed
    -- until rewarded_at is set.
    unlocked_at BIGINT,
    rewarded_at BIGINT,
    CONSTRAINT invite_codes_one_per_inviter UNIQUE (programme_id, inviter_id)
);

CREATE INDEX invite_codes_owed ON invite_codes (unlocked_at) WHERE rewarded_at IS NULL;

CREATE TABLE invite_attributions (
    programme_id TEXT NOT NULL REFERENCES invite_programmes (id),
    invitee_id TEXT NOT NULL,
    code TEXT NOT NULL REFERENCES invite_codes (code),
    device_id TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    -- The feed seq of the event that qualified the invitee.
    qualified_seq BIGINT,
    qualified_at BIGINT,
    PRIMARY KEY (programme_id, invitee_id),
    CONSTRAINT invite_attributions_device UNIQUE (programme_id, device_id)
);

CREATE INDEX invite_attributions_by_invitee ON invite_attributions (invitee_id);
