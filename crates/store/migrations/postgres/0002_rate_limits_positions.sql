-- Rate limits and stream positions (PostgreSQL). Keep in step with ../sqlite/0002_rate_limits_positions.sql.

-- The hourly lookup limit, one row per requester (GCRA): `tat` is the "theoretical arrival time" in
-- Unix milliseconds, the moment at which the requester's allowance is full again. A lookup is
-- granted, and `tat` moves on by one interval (3,600,000 ms / limit), in one conditional upsert. A
-- row whose `tat` has passed means the same as no row, and is purged.
CREATE TABLE rate_limits (
    requester TEXT   NOT NULL PRIMARY KEY,
    tat       BIGINT NOT NULL
);

-- Named positions in event streams that only move forward (e.g. the creation time, in Unix
-- milliseconds, of the last Webex message handled), for catching up after a restart.
CREATE TABLE positions (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
