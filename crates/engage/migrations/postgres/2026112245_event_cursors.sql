-- Event feed cursors (crates/engage/src/events/feed.rs). Same file name and shape on SQLite.

-- How far each consumer of behaviour events (rules, tasks, invites, team challenges) has
-- come: the last `behaviour_events.seq` whose effects it has committed. A consumer moves
-- its cursor in the same transaction as the effects, with a conditional update, so an
-- event's effects are applied once even with several nodes.
CREATE TABLE event_cursors (
    consumer TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
