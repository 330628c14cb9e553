CREATE TABLE inbox_messages (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    link TEXT,
    data TEXT NOT NULL,
    dedupe_key TEXT,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    CONSTRAINT inbox_messages_dedupe UNIQUE (customer_id, dedupe_key)
);
CREATE INDEX inbox_messages_customer ON inbox_messages (customer_id, id);
