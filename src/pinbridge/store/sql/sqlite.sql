-- Named queries of the SQLite store. Each block starts with `-- name: <name>`;
-- Python refers to them by name (pinbridge.store.sql.load_queries).

-- name: insert_dedup_key
-- New key, or a key last seen before the window: counts as new (changes() = 1).
INSERT INTO dedup_keys (event_name, event_id, seen_at) VALUES (:event_name, :event_id, :now)
ON CONFLICT (event_name, event_id) DO UPDATE SET seen_at = excluded.seen_at
WHERE dedup_keys.seen_at < :cutoff;

-- name: delete_dedup_key
-- An event refused after its key was taken (no identifier found): the key is given back.
DELETE FROM dedup_keys WHERE event_name = :event_name AND event_id = :event_id;

-- name: insert_event
INSERT INTO events (event_id, event_name, event_time, accepted_at, input, payload, person_id)
VALUES (:event_id, :event_name, :event_time, :now, :input, :payload, :person_id);

-- name: insert_delivery
INSERT INTO deliveries (event_row, destination, due_at, expires_at, payload, enrichment)
VALUES (:event_row, :destination, :now, :expires_at, :payload, :enrichment);

-- name: claim
-- A claim is two statements in one transaction (the writer's, which holds the write lock, so
-- no one can lease the rows in between): up to :limit due rows of one destination with their
-- payloads, oldest due first, then their lease (claim_lease). One UPDATE ... RETURNING with
-- the payload subqueries costs about twice as much.
SELECT d.id, d.attempts, d.expires_at, coalesce(d.payload, e.payload), e.accepted_at,
    e.event_name, e.event_time
FROM deliveries d JOIN events e ON e.id = d.event_row
WHERE d.destination = :destination AND d.state = 'queued' AND d.due_at <= :now
  AND (d.lease_until IS NULL OR d.lease_until < :now)
ORDER BY d.due_at, d.id
LIMIT :limit;

-- name: claim_lease
UPDATE deliveries SET lease_owner = :owner, lease_until = :lease_until
WHERE id IN (SELECT value FROM json_each(:ids));

-- name: mark_delivered
-- The completion queries take the ids of a group of rows that got the same answer, as a
-- JSON array (:ids), and change only those still leased to :owner.
UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, lease_owner = NULL,
    lease_until = NULL, last_http_status = :http_status, last_message = :message,
    warning = :warning, finished_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner = :owner;

-- name: mark_retry
UPDATE deliveries SET attempts = attempts + 1, due_at = :due_at, lease_owner = NULL,
    lease_until = NULL, last_http_status = :http_status, last_message = :message
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner = :owner;

-- name: mark_dead
UPDATE deliveries SET state = 'dead', attempts = attempts + :counted, lease_owner = NULL,
    lease_until = NULL, last_http_status = :http_status, last_message = :message,
    finished_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner = :owner;

-- name: release
-- Give a claim back untouched (the destination is stopped): not an attempt.
UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, last_http_status = :http_status,
    last_message = :message
WHERE id IN (SELECT value FROM json_each(:ids)) AND lease_owner = :owner;

-- name: insert_attempt
INSERT INTO attempts (delivery_id, at, outcome, http_status, message)
SELECT value, :now, :outcome, :http_status, :message FROM json_each(:ids);

-- name: pause_destination
INSERT INTO destination_state (name, paused_reason, paused_at) VALUES (:name, :reason, :now)
ON CONFLICT (name) DO UPDATE SET paused_reason = excluded.paused_reason,
    paused_at = excluded.paused_at;

-- name: resume_destination
UPDATE destination_state SET paused_reason = NULL, paused_at = NULL WHERE name = :name;

-- name: destination_states
SELECT name, paused_reason, paused_at FROM destination_state;

-- name: queue_stats
-- Per destination (every one with a delivery row, found by a skip scan of deliveries_state:
-- one index search per destination): the live queue from the partial index deliveries_due
-- (only queued rows are read), deliveries finished as delivered since :since and the dead
-- letters kept, both counted on deliveries_state's (destination, state, finished_at) alone.
-- No figure reads the delivered history (it grows without bound: nothing prunes it).
WITH RECURSIVE names (destination) AS (
    SELECT min(destination) FROM deliveries
    UNION ALL
    SELECT (SELECT min(d.destination) FROM deliveries d WHERE d.destination > n.destination)
    FROM names n WHERE n.destination IS NOT NULL
),
live AS (
    SELECT destination, count(*) AS queued, SUM(lease_until >= :now) AS in_flight,
        SUM(attempts > 0) AS retrying, MIN(due_at) AS next_due
    FROM deliveries WHERE state = 'queued' GROUP BY destination
)
SELECT n.destination, l.queued, l.in_flight, l.retrying,
    (SELECT count(*) FROM deliveries d WHERE d.destination = n.destination
        AND d.state = 'delivered' AND d.finished_at >= :since) AS delivered,
    (SELECT count(*) FROM deliveries d WHERE d.destination = n.destination
        AND d.state = 'dead') AS dead,
    l.next_due
FROM names n LEFT JOIN live l ON l.destination = n.destination
WHERE n.destination IS NOT NULL
ORDER BY n.destination;

-- name: dead_letters
SELECT d.id, d.destination, e.event_name, e.event_id, e.event_time, d.last_http_status,
    d.last_message, d.finished_at, d.attempts
FROM deliveries d JOIN events e ON e.id = d.event_row
WHERE d.state = 'dead'
    AND (:destination IS NULL OR d.destination = :destination)
    AND (:since IS NULL OR d.finished_at >= :since)
    AND (:reason IS NULL OR instr(lower(d.last_message), lower(:reason)) > 0)
ORDER BY d.id
LIMIT :limit;

-- name: replay
-- Dead letters back to the queue, due now, with a fresh attempt count. The expiry stays:
-- Pinterest refuses events older than 7 days whatever we do.
UPDATE deliveries SET state = 'queued', attempts = 0, due_at = :now, finished_at = NULL,
    lease_owner = NULL, lease_until = NULL
WHERE id = :id AND state = 'dead';

-- name: delivered_payloads
SELECT coalesce(d.payload, e.payload) FROM deliveries d JOIN events e ON e.id = d.event_row
WHERE d.destination = :destination AND d.state = 'delivered' ORDER BY d.finished_at, d.id;

-- name: event_history
SELECT e.id, e.event_id, e.event_name, e.event_time, e.accepted_at, e.input, e.payload
FROM events e WHERE e.event_id = :event_id ORDER BY e.id;

-- name: prune_dedup_keys
DELETE FROM dedup_keys WHERE seen_at < :cutoff;

-- Identity (pinbridge.identity.IdentityTables) -----------------------------------------------

-- name: new_person
INSERT INTO persons (created_at, last_seen) VALUES (:now, :now);

-- name: kind_counts
SELECT substr(key, 1, instr(key, ':') - 1) AS kind, count(*) FROM identifiers
WHERE person_id = :person GROUP BY kind;

-- name: merge_identifiers
UPDATE identifiers SET person_id = :into WHERE person_id = :other;

-- name: merge_clicks
INSERT INTO clicks (person_id, click_id, first_seen, last_seen, landing_url, utm)
SELECT :into, click_id, first_seen, last_seen, landing_url, utm FROM clicks WHERE person_id = :other
ON CONFLICT (person_id, click_id) DO UPDATE SET
    first_seen = min(clicks.first_seen, excluded.first_seen),
    last_seen = max(clicks.last_seen, excluded.last_seen);

-- name: merge_events
UPDATE events SET person_id = :into WHERE person_id = :other;

-- name: delete_person
DELETE FROM persons WHERE id = :person;

-- name: attach_identifier
INSERT INTO identifiers (key, person_id, first_seen, last_seen) VALUES (:key, :person, :now, :now)
ON CONFLICT (key) DO UPDATE SET last_seen = max(identifiers.last_seen, excluded.last_seen)
WHERE identifiers.person_id = excluded.person_id;

-- name: add_click
-- A click counts from its first sighting: an earlier one accepted later (an import, a late
-- batch) moves first_seen back.
INSERT INTO clicks (person_id, click_id, first_seen, last_seen, landing_url, utm)
VALUES (:person, :click_id, :first_seen, :last_seen, :landing_url, :utm)
ON CONFLICT (person_id, click_id) DO UPDATE SET
    first_seen = min(clicks.first_seen, excluded.first_seen),
    last_seen = max(clicks.last_seen, excluded.last_seen),
    landing_url = coalesce(clicks.landing_url, excluded.landing_url);

-- name: clicks
SELECT click_id, first_seen, last_seen, landing_url, utm FROM clicks
WHERE person_id = :person ORDER BY last_seen;

-- name: profile
SELECT profile FROM persons WHERE id = :person;

-- name: save_profile
UPDATE persons SET profile = :profile, last_seen = max(last_seen, :now) WHERE id = :person;

-- Forgetting and retention ---------------------------------------------------------------------

-- name: forget_inputs
-- Events (id :from_id and up) whose kept input holds a value somewhere; forget then checks
-- the exact field.
SELECT id, input FROM events WHERE id >= :from_id AND instr(input, :value) > 0;

-- name: forget_profiles
-- People (id :from_id and up) whose profile holds a digest somewhere; forget then removes it
-- from em and ph.
SELECT id, profile FROM persons WHERE id >= :from_id AND instr(profile, :digest) > 0;

-- name: forget_set_profile
UPDATE persons SET profile = :profile WHERE id = :person;

-- name: prune_persons
DELETE FROM persons WHERE last_seen < :cutoff;

-- Reports --------------------------------------------------------------------------------------

-- name: attribution
-- Conversions accepted since :since, each with the clicks of its person made within :window
-- before it (one row per conversion and click; no click: NULLs). A click counts from when
-- it happened, its first_seen, as in enrichment (pinbridge.identity.latest_click): seeing
-- it again later does not bring an old click back into the window.
SELECT e.id, e.event_name, e.event_time, e.payload, c.click_id, c.first_seen, c.utm
FROM events e
LEFT JOIN clicks c ON c.person_id = e.person_id
    AND c.first_seen <= e.event_time + 300 AND c.first_seen >= e.event_time - :window
WHERE e.accepted_at >= :since AND e.event_name IN ('checkout', 'lead', 'signup', 'add_to_cart')
ORDER BY e.id;

-- Diagnostics (pinbridge.diagnostics, the dashboard, `pinbridge catalog`) ----------------------

-- name: catalog_clear
DELETE FROM catalog_products;

-- name: catalog_insert
INSERT INTO catalog_products (id, title, price, availability, loaded_at)
VALUES (:id, :title, :price, :availability, :now)
ON CONFLICT (id) DO UPDATE SET title = excluded.title, price = excluded.price,
    availability = excluded.availability, loaded_at = excluded.loaded_at;

-- name: catalog_size
SELECT count(*), max(loaded_at) FROM catalog_products;

-- name: add_accept_count
INSERT INTO accept_counts (minute, outcome, reason, event_name, count)
VALUES (:minute, :outcome, :reason, :event_name, :count)
ON CONFLICT (minute, outcome, reason, event_name) DO UPDATE SET
    count = accept_counts.count + excluded.count;

-- name: accept_counts
SELECT minute, outcome, reason, event_name, count FROM accept_counts
WHERE minute >= :since ORDER BY minute;

-- name: sent_events
-- Deliveries of events accepted since :since (newest first), with the payload as sent.
SELECT d.id, d.destination, e.event_name, e.event_time, e.accepted_at, d.state,
    d.finished_at, d.last_http_status, coalesce(d.payload, e.payload)
FROM deliveries d JOIN events e ON e.id = d.event_row
WHERE e.accepted_at >= :since
ORDER BY d.id DESC
LIMIT :limit;

-- name: finished_deliveries
-- Deliveries finished (delivered or dead) since :since, newest first, with their event's
-- times: a range of deliveries_finished, however long ago the events were accepted.
SELECT d.destination, d.state, e.event_time, e.accepted_at, d.finished_at
FROM deliveries d JOIN events e ON e.id = d.event_row
WHERE d.finished_at >= :since
ORDER BY d.finished_at DESC
LIMIT :limit;

-- name: timeline
-- Per bucket of :bucket seconds since :since: accepted events, finished deliveries by state,
-- and attempts by outcome and HTTP status.
SELECT CAST(accepted_at / :bucket AS INTEGER) * :bucket AS t, 'accepted', '', count(*)
FROM events WHERE accepted_at >= :since GROUP BY t
UNION ALL
SELECT CAST(finished_at / :bucket AS INTEGER) * :bucket AS t, state, '', count(*)
FROM deliveries WHERE finished_at >= :since GROUP BY t, state
UNION ALL
SELECT CAST(at / :bucket AS INTEGER) * :bucket AS t, 'attempt:' || outcome,
    coalesce(CAST(http_status AS TEXT), ''), count(*)
FROM attempts WHERE at >= :since GROUP BY t, outcome, http_status
ORDER BY 1;

-- name: dead_letters_since
-- Per destination (skip scan, as in queue_stats), dead letters that died since :since
-- (0 for most: the caller drops them): a range of deliveries_state each, never the
-- delivered history.
WITH RECURSIVE names (destination) AS (
    SELECT min(destination) FROM deliveries
    UNION ALL
    SELECT (SELECT min(d.destination) FROM deliveries d WHERE d.destination > n.destination)
    FROM names n WHERE n.destination IS NOT NULL
)
SELECT n.destination,
    (SELECT count(*) FROM deliveries d WHERE d.destination = n.destination
        AND d.state = 'dead' AND d.finished_at >= :since) AS dead
FROM names n WHERE n.destination IS NOT NULL;

-- name: history_events
-- Events by event id, or whose payload contains :needle (an order id, an email digest).
SELECT e.id, e.event_id, e.event_name, e.event_time, e.accepted_at, e.input, e.payload
FROM events e
WHERE e.event_id = :event_id OR (:needle IS NOT NULL AND instr(e.payload, :needle) > 0)
ORDER BY e.id DESC
LIMIT :limit;

-- name: history_deliveries
SELECT d.id, d.destination, d.state, d.attempts, d.last_http_status, d.last_message,
    d.warning, d.enrichment, coalesce(d.payload, e.payload), d.finished_at
FROM deliveries d JOIN events e ON e.id = d.event_row
WHERE d.event_row = :event_row ORDER BY d.id;

-- name: history_attempts
SELECT at, outcome, http_status, message FROM attempts WHERE delivery_id = :id ORDER BY at;
