-- 001_initial: auctions, accepted bids and results.
--
-- Applied once by the migration runner in src/sqlite/schema.rs, which records the
-- version in `PRAGMA user_version` in the same transaction. Never edit a migration that
-- has shipped: add NNN_next.sql instead.
--
-- Money is INTEGER minor units, times are INTEGER ms since the Unix epoch (server UTC),
-- sequence numbers are INTEGER. STRICT tables refuse values of the wrong type.

-- One row per auction: the fixed spec and the latest state, both as the JSON of the
-- gavel-core types (the archive never interprets them beyond the columns copied out
-- for queries). `seq` is the state's seq: the state row only moves forward.
CREATE TABLE auctions (
    id         TEXT    PRIMARY KEY,
    spec       TEXT    NOT NULL,  -- AuctionSpec as JSON
    state      TEXT    NOT NULL,  -- AuctionState as JSON (latest stored)
    seq        INTEGER NOT NULL,
    status     TEXT    NOT NULL,  -- scheduled | open | closed (as of `seq`)
    ends_at    INTEGER NOT NULL,  -- current end (soft close may have moved it)
    created_at INTEGER NOT NULL   -- when the archive first stored the auction
) STRICT;

-- Every accepted price-moving bid (the public history). Keyed by the server-generated
-- bid id so a redelivered change is stored once; (auction_id, seq) is unique too, and
-- its index is the one history pagination walks:
--   WHERE auction_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?
CREATE TABLE bids (
    bid_id      TEXT    PRIMARY KEY,
    auction_id  TEXT    NOT NULL REFERENCES auctions (id),
    seq         INTEGER NOT NULL,
    bidder_id   TEXT    NOT NULL,
    bidder_name TEXT    NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    kind        TEXT    NOT NULL,  -- bid | auto | buy_now
    placed_at   INTEGER NOT NULL,
    request_id  TEXT,              -- the idempotency key of the request that placed it
    UNIQUE (auction_id, seq)
) STRICT;

-- The final result of each closed auction, written once.
CREATE TABLE results (
    auction_id  TEXT    PRIMARY KEY REFERENCES auctions (id),
    seq         INTEGER NOT NULL,  -- the seq of the closing change
    reason      TEXT    NOT NULL,  -- ended | buy_now | ended_early | cancelled
    winner_id   TEXT,
    winner_name TEXT,
    final_price INTEGER,
    closed_at   INTEGER NOT NULL,
    by_admin    TEXT               -- the admin who cancelled or ended it early
) STRICT;
