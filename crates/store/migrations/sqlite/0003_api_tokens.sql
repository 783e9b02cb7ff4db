-- API tokens (SQLite). Keep in step with ../postgres/0003_api_tokens.sql.

-- Bearer tokens for scripts, each acting as one requester (an email). Only the SHA-256 of a token is
-- kept: the token itself is shown once, when it is created. Tokens carry 256 random bits, so a
-- plain hash is enough (no salt or slow hash: nothing to guess).
CREATE TABLE api_tokens (
    name       TEXT    NOT NULL PRIMARY KEY,
    requester  TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
