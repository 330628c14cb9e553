-- Questionnaires and quizzes saved by operators. The validated graph is kept whole as JSON
-- text (the one type both backends read alike through the Any driver); it never changes
-- after saving, so sessions can replay their answers against it.
CREATE TABLE questionnaires (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('survey', 'quiz')),
    definition TEXT NOT NULL,
    published BIGINT NOT NULL CHECK (published IN (0, 1)),
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX questionnaires_published ON questionnaires (published, id);

-- A customer's walk through a questionnaire (or the built-in 'risk-appetite'). `answers`
-- is the JSON list of answers so far and `answered` its length, which writers compare so
-- that two concurrent answers cannot both extend the same state.
CREATE TABLE questionnaire_sessions (
    id TEXT PRIMARY KEY,
    questionnaire_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    answered BIGINT NOT NULL,
    score BIGINT,
    finished_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX questionnaire_sessions_customer ON questionnaire_sessions (customer_id, id);

-- The latest suitability level (C1..C5) from the risk-appetite questionnaire.
CREATE TABLE customer_suitability (
    customer_id TEXT PRIMARY KEY,
    level TEXT NOT NULL CHECK (level IN ('C1', 'C2', 'C3', 'C4', 'C5')),
    score BIGINT NOT NULL,
    session_id TEXT NOT NULL,
    assessed_at BIGINT NOT NULL
);
