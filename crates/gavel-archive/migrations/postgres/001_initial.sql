-- 001_initial: auctions, accepted bids and results (PostgreSQL, distributed mode).
--
-- Applied once by the migration runner in src/postgres.rs, which records the version in
-- `gavel_migrations` in the same transaction, under an advisory lock so that several
-- nodes starting at once apply it once. Never edit a migration that has shipped: add
-- NNN_next.sql instead.
--
-- Money is BIGINT minor units (at most 2^53 - 1), times are BIGINT ms since the Unix
-- epoch (server UTC), sequence numbers are BIGINT. The same tables as the SQLite archive.

-- One row per auction: the fixed spec and the latest state as the JSON of the gavel-core
-- types, plus the columns queries need. The state row only moves forward (by `seq`).
CREATE TABLE auctions (
    id         TEXT        PRIMARY KEY,
    spec       JSONB       NOT NULL,
    state      JSONB       NOT NULL,
    seq        BIGINT      NOT NULL,
    status     TEXT        NOT NULL CHECK (status IN ('scheduled', 'open', 'closed')),
    ends_at    BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Every accepted price-moving bid. Keyed by the server-generated bid id (never by the
-- stream id or seq, which Redis can hand out again after losing recent writes), so a
-- redelivered change is stored once; (auction_id, seq) stays unique too, and a bid that
-- collides there with another bid id is skipped and reported (see postgres.rs). Its index
-- is the one history pagination walks.
CREATE TABLE bids (
    bid_id      TEXT   PRIMARY KEY,
    auction_id  TEXT   NOT NULL REFERENCES auctions (id),
    seq         BIGINT NOT NULL,
    bidder_id   TEXT   NOT NULL,
    bidder_name TEXT   NOT NULL,
    amount      BIGINT NOT NULL CHECK (amount > 0 AND amount <= 9007199254740991),
    kind        TEXT   NOT NULL CHECK (kind IN ('bid', 'auto', 'buy_now')),
    placed_at   BIGINT NOT NULL,
    request_id  TEXT,
    UNIQUE (auction_id, seq)
);

-- The final result of each closed auction, written once.
CREATE TABLE results (
    auction_id  TEXT   PRIMARY KEY REFERENCES auctions (id),
    seq         BIGINT NOT NULL,
    reason      TEXT   NOT NULL CHECK (reason IN ('ended', 'buy_now', 'ended_early', 'cancelled')),
    winner_id   TEXT,
    winner_name TEXT,
    final_price BIGINT,
    closed_at   BIGINT NOT NULL,
    by_admin    TEXT
);
