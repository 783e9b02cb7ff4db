-- The web app's sign-in (SQLite). Keep in step with ../postgres/0004_web.sql.

-- Keys shared by every instance (e.g. the one that signs CSRF tokens), created by the first
-- instance that needs one. Secret: the database is as sensitive as the configuration's secrets.
CREATE TABLE web_keys (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Signed-in browser sessions: the SHA-256 of the cookie's random id (the id itself is never
-- stored), the requester's verified email, and when the session ends.
CREATE TABLE sessions (
    id_hash    TEXT    NOT NULL PRIMARY KEY,
    requester  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Sign-ins under way: what the OpenID Connect callback must check (state, nonce, PKCE verifier)
-- and where to return. Used once; expire after minutes.
CREATE TABLE logins (
    state      TEXT    NOT NULL PRIMARY KEY,
    nonce      TEXT    NOT NULL,
    verifier   TEXT    NOT NULL,
    return_to  TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX logins_created_at ON logins (created_at);
