-- Team challenges, teams and members (crates/social/src/teams).
-- Same file name and shape on SQLite. Times are microseconds since the epoch (UTC).

CREATE TABLE team_challenges (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    campaign_id TEXT,
    -- Events counted toward a team's target, e.g. green_trip, and a JSON object of
    -- properties they must carry.
    event_type TEXT NOT NULL,
    event_match TEXT NOT NULL,
    target BIGINT NOT NULL CHECK (target > 0),
    max_members BIGINT NOT NULL CHECK (max_members BETWEEN 2 AND 10),
    -- The prize every member of a team that reaches the target receives.
    reward_points BIGINT,
    reward_id TEXT,
    -- Events received in [starts_at, ends_at) count; teams form and join until ends_at.
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK (ends_at > starts_at),
    CHECK ((reward_points IS NULL) <> (reward_id IS NULL))
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY,
    challenge_id TEXT NOT NULL REFERENCES team_challenges (id),
    name TEXT NOT NULL,
    join_code TEXT NOT NULL UNIQUE,
    captain_id TEXT NOT NULL,
    members BIGINT NOT NULL CHECK (members BETWEEN 1 AND 10),
    progress BIGINT NOT NULL DEFAULT 0 CHECK (progress >= 0),
    -- Set once when progress reaches the target.
    completed_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE INDEX teams_leaderboard ON teams (challenge_id, progress DESC, completed_at, created_at);

CREATE TABLE team_members (
    challenge_id TEXT NOT NULL REFERENCES team_challenges (id),
    customer_id TEXT NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id),
    contribution BIGINT NOT NULL DEFAULT 0 CHECK (contribution >= 0),
    joined_at BIGINT NOT NULL,
    -- Set when the member's prize is paid (the team completed).
    rewarded_at BIGINT,
    -- One team per customer and challenge.
    PRIMARY KEY (challenge_id, customer_id)
);

CREATE INDEX team_members_by_team ON team_members (team_id);
CREATE INDEX team_members_by_customer ON team_members (customer_id);
