-- The live device table (PostgreSQL). Keep in step with ../sqlite/0005_device_locations.sql.

-- Positions pushed by location streams (Cisco Spaces Firehose, Meraki Scanning API): one row per
-- device and source, holding only that device's LATEST fix. No history is kept, on purpose: a trail
-- of where each person's device has been is a record of their movements, which whereis has no need
-- for (it answers "where is X now") and must not collect. An update replaces the row, and only when
-- it is not older than what is stored; rows not seen for a while are purged.
--
-- `mac` is lower-case colon form; `username` is normalised by the writer (lookups are exact);
-- `identity` is the raw 802.1X identity; `floor_key` the stream's floor id (Spaces mapId, Meraki
-- floorPlanId); `building_fold` is `building` case-folded by the writer, for the building roster
-- (so that both backends compare alike, Unicode included); `unit` is 'FEET' or 'METER'; times are
-- Unix milliseconds; x, y and accuracy are 8-byte floats, as SQLite's REAL.
CREATE TABLE device_locations (
    source        TEXT NOT NULL,
    mac           TEXT NOT NULL,
    username      TEXT,
    identity      TEXT,
    floor_key     TEXT,
    campus        TEXT,
    building      TEXT,
    building_fold TEXT,
    floor         TEXT,
    x             DOUBLE PRECISION,
    y             DOUBLE PRECISION,
    unit          TEXT NOT NULL,
    accuracy      DOUBLE PRECISION,
    ssid          TEXT,
    ip            TEXT,
    status        TEXT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (source, mac)
) WITH (fillfactor = 70);
-- Lookups: `WHERE username = $1 AND source = $2` (the leading column serves a lookup of all sources).
CREATE INDEX device_locations_username ON device_locations (username, source);
-- The building roster.
CREATE INDEX device_locations_building ON device_locations (source, building_fold);
-- No index on last_seen_ms, which every update changes: on PostgreSQL it would rule out updating a
-- row in place (a "heap-only tuple" update, hence the room left in each page by the fillfactor) and
-- cost an index write per update on both. The purge, once a minute, reads the table instead: it
-- holds one row per device, however long whereis runs.
