-- Event log: one row per message per node, written in batches by the EventWriter.
CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order
    time        BIGINT NOT NULL,              -- unix seconds
    queue_id    TEXT NOT NULL,
    node        TEXT NOT NULL,
    client_ip   TEXT NOT NULL,
    helo        TEXT NOT NULL,
    mail_from   TEXT NOT NULL,
    rcpts       TEXT NOT NULL,                -- JSON array
    size        BIGINT NOT NULL,
    verdict     TEXT NOT NULL,
    action      TEXT NOT NULL,
    findings    TEXT NOT NULL,                -- JSON array of mxguard_types::Finding
    engines     TEXT NOT NULL,                -- JSON array of per-engine verdicts
    spam_score  DOUBLE PRECISION,
    latency_us  BIGINT NOT NULL,
    stamp       TEXT,
    message_id  TEXT
);
CREATE INDEX events_time ON events (time);
CREATE INDEX events_queue_id ON events (queue_id);
CREATE INDEX events_message_id ON events (message_id);
