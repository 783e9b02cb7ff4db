-- The whereis store (PostgreSQL). Keep in step with ../sqlite/0001_store.sql: the same tables and
-- columns, so that the same SQL runs on both. Timestamps are Unix seconds; lists are JSON arrays.

-- Webex message ids already handled (dedupe of webhook deliveries, across instances).
CREATE TABLE deliveries (
    message_id  TEXT   NOT NULL PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX deliveries_received_at ON deliveries (received_at);

-- People who asked not to be located (usernames normalised by the application).
CREATE TABLE opt_outs (
    username TEXT   NOT NULL PRIMARY KEY,
    since    BIGINT NOT NULL
);

-- Every lookup, allowed or refused.
CREATE TABLE audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    requester TEXT   NOT NULL,
    target    TEXT   NOT NULL,
    channel   TEXT   NOT NULL,
    outcome   TEXT   NOT NULL,
    sources   TEXT   NOT NULL DEFAULT '[]',
    found_by  TEXT   NOT NULL DEFAULT '[]',
    devices   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX audit_target_at ON audit (target, at);
CREATE INDEX audit_requester_at ON audit (requester, at);
CREATE INDEX audit_at ON audit (at);

-- Running totals for `stats` (kind 'outcome' or 'source'); they survive the audit purge.
CREATE TABLE counters (
    kind TEXT   NOT NULL,
    name TEXT   NOT NULL,
    n    BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Candidates offered to a requester after an ambiguous full name.
CREATE TABLE choices (
    requester TEXT   NOT NULL PRIMARY KEY,
    usernames TEXT   NOT NULL,
    saved_at  BIGINT NOT NULL
);
