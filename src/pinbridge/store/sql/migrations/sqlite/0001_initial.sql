-- pinbridge schema, version 1 (SQLite).
-- No raw email, phone, name or address is ever stored: payloads hold SHA-256 digests and the
-- kept input has its PII removed before it reaches this database.

-- Every Pinterest event accepted, with what it came from and exactly what is sent.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    event_name  TEXT    NOT NULL,
    event_time  INTEGER NOT NULL,
    accepted_at REAL    NOT NULL,
    input       BLOB    NOT NULL,  -- the input event, PII removed (JSON)
    payload     BLOB    NOT NULL   -- the Pinterest event as sent (JSON)
);
CREATE INDEX events_event_id ON events (event_id);

-- The outbox: one row per event and destination. state: queued | delivered | dead.
-- A dead row is a dead letter; its reason is last_message.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    event_row        INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    destination      TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'queued',
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           REAL    NOT NULL,
    expires_at       REAL    NOT NULL,  -- event_time + Pinterest's maximum age
    lease_owner      TEXT,
    lease_until      REAL,
    last_http_status INTEGER,
    last_message     TEXT,
    warning          TEXT,
    finished_at      REAL
);
CREATE INDEX deliveries_due ON deliveries (destination, due_at) WHERE state = 'queued';
CREATE INDEX deliveries_event ON deliveries (event_row);
CREATE INDEX deliveries_state ON deliveries (destination, state, finished_at);

-- Every answer for every attempt.
CREATE TABLE attempts (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at          REAL    NOT NULL,
    outcome     TEXT    NOT NULL,  -- processed | failed | retry | stopped
    http_status INTEGER,
    message     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Local deduplication on (event_name, event_id) within a window.
CREATE TABLE dedup_keys (
    event_name TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    seen_at    REAL NOT NULL,
    PRIMARY KEY (event_name, event_id)
) WITHOUT ROWID;

-- Destinations stopped by Pinterest (401/403) until the cause is fixed.
CREATE TABLE destination_state (
    name          TEXT PRIMARY KEY,
    paused_reason TEXT,
    paused_at     REAL
);
