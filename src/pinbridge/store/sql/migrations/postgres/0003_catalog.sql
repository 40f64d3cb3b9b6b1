-- pinbridge schema, version 3 (PostgreSQL): diagnostics; mirrors migrations/sqlite/0003_catalog.sql.
-- The product catalog's ids (from `pinbridge catalog load`), the accept path's outcome counts
-- per minute (duplicates, rejections and drops leave no event row), and indexes for the
-- dashboard's time series.

CREATE TABLE catalog_products (
    id           text             PRIMARY KEY,
    title        text             NOT NULL DEFAULT '',
    price        text             NOT NULL DEFAULT '',
    availability text             NOT NULL DEFAULT '',
    loaded_at    double precision NOT NULL
);

-- outcome: accepted | duplicate | rejected | ignored | dropped; reason: bot, consent, mapping,
-- no_destination (dropped / ignored), else ''; event_name: the Pinterest name, or '' when the
-- input could not be transformed.
CREATE TABLE accept_counts (
    minute     bigint NOT NULL,  -- unix time // 60 * 60
    outcome    text   NOT NULL,
    reason     text   NOT NULL DEFAULT '',
    event_name text   NOT NULL DEFAULT '',
    count      bigint NOT NULL,
    PRIMARY KEY (minute, outcome, reason, event_name)
);

CREATE INDEX events_accepted_at ON events (accepted_at);
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX attempts_at ON attempts (at);
