-- pinbridge schema, version 2 (SQLite): identity.
-- Identifiers are kept as digests only ("<kind>:<sha-256>"); profiles hold digests, the last
-- IP address and user agent.

CREATE TABLE persons (
    id         INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    last_seen  REAL NOT NULL,
    profile    BLOB NOT NULL DEFAULT '{}'  -- JSON: digests per field, last_ip, last_user_agent
);
CREATE INDEX persons_last_seen ON persons (last_seen);

CREATE TABLE identifiers (
    key        TEXT    PRIMARY KEY,  -- "<kind>:<sha-256 hex>"
    person_id  INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    first_seen REAL    NOT NULL,
    last_seen  REAL    NOT NULL
) WITHOUT ROWID;
CREATE INDEX identifiers_person ON identifiers (person_id);

-- Pinterest clicks (epik) per person, with the landing page (no query) and its UTM parameters.
CREATE TABLE clicks (
    person_id   INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    click_id    TEXT    NOT NULL,
    first_seen  REAL    NOT NULL,
    last_seen   REAL    NOT NULL,
    landing_url TEXT,
    utm         BLOB    NOT NULL DEFAULT '{}',
    PRIMARY KEY (person_id, click_id)
);

ALTER TABLE events ADD COLUMN person_id INTEGER REFERENCES persons (id) ON DELETE SET NULL;
CREATE INDEX events_person ON events (person_id);

-- What identity added for this destination (JSON), and the payload sent when it differs
-- from the event's own.
ALTER TABLE deliveries ADD COLUMN enrichment BLOB;
ALTER TABLE deliveries ADD COLUMN payload BLOB;
