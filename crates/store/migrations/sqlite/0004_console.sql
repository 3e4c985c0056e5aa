-- The web console: users, sessions, API tokens, policy history.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,              -- argon2id PHC string
    role          TEXT NOT NULL,              -- admin | auditor
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
-- Console sessions; the cookie carries a random token, the table its SHA-256.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    client_ip   TEXT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
-- API tokens (bearer); only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,                -- first characters, to recognise it
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    last_used   INTEGER
);
-- Every saved policy: who, when, the text and the diff from the previous one.
CREATE TABLE policy_history (
    id          INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    user_name   TEXT NOT NULL,
    node        TEXT NOT NULL,
    path        TEXT NOT NULL,
    text        TEXT NOT NULL,
    diff        TEXT NOT NULL,
    comment     TEXT NOT NULL
);
CREATE INDEX policy_history_time ON policy_history (time);
