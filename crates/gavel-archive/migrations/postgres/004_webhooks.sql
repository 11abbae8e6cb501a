-- 004_webhooks: the webhook outbox (Standard Webhooks 1.0), PostgreSQL (distributed mode).
--
-- Events are written by the drainer's batch statement, in the same statement (so the same
-- transaction) as the changes they describe, with one delivery row per endpoint that
-- wants them. Every node runs a deliverer; each claims due deliveries with
-- `FOR UPDATE SKIP LOCKED` and a lease (`leased_until`), so one node posts each delivery,
-- and a node killed mid-delivery leaves the lease to expire: another node (or the same
-- one restarted) posts it again with the same event id.

CREATE TABLE webhook_endpoints (
    id              TEXT    PRIMARY KEY,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    bid_events      BOOLEAN NOT NULL DEFAULT false,
    source          TEXT    NOT NULL CHECK (source IN ('config', 'api')),
    description     TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    disabled_at     BIGINT,
    disabled_reason TEXT
);

CREATE TABLE webhook_events (
    id         TEXT   PRIMARY KEY,
    type       TEXT   NOT NULL,
    auction_id TEXT,
    payload    TEXT   NOT NULL,  -- the exact JSON body signed and sent
    created_at BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    event_id        TEXT    NOT NULL REFERENCES webhook_events (id),
    endpoint_id     TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    leased_until    BIGINT,
    lease_owner     TEXT,
    last_attempt_at BIGINT,
    last_status     INTEGER,
    last_error      TEXT,
    finished_at     BIGINT,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);
