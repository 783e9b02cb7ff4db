-- Each person's own privacy choices, and each requester's favourites (SQLite). Keep in step with
-- ../postgres/0006_privacy_settings.sql.

-- One row per person (username normalised by the application); no row, or a NULL column, means the
-- organisation's default. Every change rewrites the row under a compare-and-swap on `version`, so
-- concurrent changes on any instance never lose one another and the list limits hold.
CREATE TABLE privacy_settings (
    username    TEXT    NOT NULL PRIMARY KEY,
    -- 1: opted in, 0: opted out, NULL: the organisation's default.
    findable    INTEGER,
    -- 'exact', 'floor' or 'building'; NULL: the organisation's maximum.
    precision   TEXT,
    -- The person's own working hours, within the organisation's ('09:00-17:00 mon,tue,wed').
    hours       TEXT,
    -- 0: everyone may find the person; 1: only those chosen (team, named people).
    restricted  INTEGER NOT NULL DEFAULT 0,
    share_team  INTEGER NOT NULL DEFAULT 0,
    -- JSON arrays of lower-case emails.
    shared_with TEXT    NOT NULL DEFAULT '[]',
    blocked     TEXT    NOT NULL DEFAULT '[]',
    version     INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);
INSERT INTO privacy_settings (username, findable, updated_at)
    SELECT username, 0, since FROM opt_outs;
DROP TABLE opt_outs;

-- The colleagues a requester starred: a JSON array of usernames, one row per requester (an email).
CREATE TABLE favourites (
    requester  TEXT    NOT NULL PRIMARY KEY,
    usernames  TEXT    NOT NULL DEFAULT '[]',
    version    INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- How precisely an allowed lookup was answered ('exact', 'floor', 'building'); NULL for refusals
-- and for rows written before it was recorded.
ALTER TABLE audit ADD COLUMN precision TEXT;
