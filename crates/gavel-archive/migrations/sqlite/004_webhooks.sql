-- 004_webhooks: the webhook outbox (Standard Webhooks 1.0).
--
-- An event for the outside world is written in the same transaction as the change it
-- describes (`record_batch`, `create_auction`), together with one delivery row per
-- endpoint that wants it. A deliverer claims due deliveries (a lease: `leased_until`),
-- posts them, and records the outcome; a process killed mid-delivery leaves the lease to
-- expire, and the delivery is made again with the same event id (at least once).

-- Where events go. `secret` is the `whsec_…` signing secret (stored as given: the
-- archive is as sensitive as the secrets, see docs/security.md). `source` is `config`
-- for endpoints given by `--webhook` (re-applied at every start) or `api`.
CREATE TABLE webhook_endpoints (
    id              TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    bid_events      INTEGER NOT NULL DEFAULT 0,  -- 1: also `bid.accepted`
    source          TEXT    NOT NULL,            -- config | api
    description     TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER,                      -- set when the receiver answered 410
    disabled_reason TEXT
) STRICT;

-- Every event, once, keyed by its stable id (the `webhook-id` of every attempt). The
-- payload is the exact JSON body that is signed and sent.
CREATE TABLE webhook_events (
    id         TEXT    PRIMARY KEY,
    type       TEXT    NOT NULL,
    auction_id TEXT,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- One row per (event, endpoint): pending until delivered (2xx) or failed (retries spent,
-- endpoint disabled).
CREATE TABLE webhook_deliveries (
    event_id        TEXT    NOT NULL REFERENCES webhook_events (id),
    endpoint_id     TEXT    NOT NULL,
    status          TEXT    NOT NULL,  -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until    INTEGER,
    lease_owner     TEXT,
    last_attempt_at INTEGER,
    last_status     INTEGER,           -- the receiver's HTTP status, if it answered
    last_error      TEXT,
    finished_at     INTEGER,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
) STRICT;

-- What a deliverer polls: due pending deliveries, oldest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- The admin API's per-endpoint listing.
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);
