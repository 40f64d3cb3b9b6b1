-- pinbridge schema, version 3 (SQLite): diagnostics.
-- The product catalog's ids (from `pinbridge catalog load`), the accept path's outcome counts
-- per minute (duplicates, rejections and drops leave no event row), and indexes for the
-- dashboard's time series.

CREATE TABLE catalog_products (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL DEFAULT '',
    price        TEXT NOT NULL DEFAULT '',
    availability TEXT NOT NULL DEFAULT '',
    loaded_at    REAL NOT NULL
) WITHOUT ROWID;

-- outcome: accepted | duplicate | rejected | ignored | dropped; reason: bot, consent, mapping,
-- no_destination (dropped / ignored), else ''; event_name: the Pinterest name, or '' when the
-- input could not be transformed.
CREATE TABLE accept_counts (
    minute     INTEGER NOT NULL,  -- unix time // 60 * 60
    outcome    TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    event_name TEXT    NOT NULL DEFAULT '',
    count      INTEGER NOT NULL,
    PRIMARY KEY (minute, outcome, reason, event_name)
) WITHOUT ROWID;

CREATE INDEX events_accepted_at ON events (accepted_at);
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX attempts_at ON attempts (at);
