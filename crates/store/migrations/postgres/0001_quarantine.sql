-- Quarantine: one row per quarantined message (id = the gateway's queue id).
-- Searchable copies (*_lc) are lowercased by the store (Unicode), so a
-- case-insensitive substring search behaves the same on SQLite and PostgreSQL.
CREATE TABLE quarantine (
    id            TEXT PRIMARY KEY,
    time          BIGINT NOT NULL,            -- unix seconds
    node          TEXT NOT NULL,
    client_ip     TEXT NOT NULL,
    mail_from     TEXT NOT NULL,
    mail_from_lc  TEXT NOT NULL,
    rcpts         TEXT NOT NULL,              -- JSON array, envelope order
    subject       TEXT NOT NULL,
    subject_lc    TEXT NOT NULL,
    reason        TEXT NOT NULL,              -- infected | suspicious | unscannable | backup | ...
    action        TEXT NOT NULL,
    policy        TEXT,
    findings      TEXT NOT NULL,              -- JSON array of mxguard_types::Finding
    size          BIGINT NOT NULL,            -- original message bytes
    stored_size   BIGINT NOT NULL,            -- compressed bytes
    sha256        TEXT NOT NULL,              -- of the original message, checked on read
    released_at   BIGINT,                     -- last release (NULL: never released)
    release_token TEXT UNIQUE                 -- set on the first release, kept afterwards
);
CREATE INDEX quarantine_time ON quarantine (time);
CREATE INDEX quarantine_released ON quarantine (released_at);

CREATE TABLE quarantine_rcpt (
    qid         TEXT NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    address     TEXT NOT NULL,
    address_lc  TEXT NOT NULL,
    released_at BIGINT,
    released_by TEXT,
    PRIMARY KEY (qid, pos)
);
CREATE INDEX quarantine_rcpt_address ON quarantine_rcpt (address_lc);

CREATE TABLE quarantine_threat (
    qid     TEXT NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    engine  TEXT NOT NULL,
    PRIMARY KEY (qid, name, engine)
);
CREATE INDEX quarantine_threat_name ON quarantine_threat (name_lc);

-- The message itself, apart so that searches never read it.
CREATE TABLE quarantine_message (
    qid         TEXT PRIMARY KEY REFERENCES quarantine (id) ON DELETE CASCADE,
    compression TEXT NOT NULL,                -- 'deflate' (zlib stream) or 'none'
    data        BYTEA NOT NULL
);

-- Every release: who, when, to whom.
CREATE TABLE quarantine_release (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    qid         TEXT NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE,
    time        BIGINT NOT NULL,
    released_by TEXT NOT NULL,
    rcpts       TEXT NOT NULL                 -- JSON array
);
CREATE INDEX quarantine_release_qid ON quarantine_release (qid);
