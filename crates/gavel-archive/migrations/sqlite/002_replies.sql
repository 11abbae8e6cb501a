-- 002_replies: the first answer to every accepted request, so that a retry after a restart
-- (or after the auction's hot state has left the engine) gets exactly that answer again.
--
-- A reply is the auction's state right after the request was decided, as the JSON of
-- gavel-core's AuctionState. The request was accepted, so the requester led at that seq:
-- a proxy maximum in it is the requester's own, never anyone else's. Rejections are not
-- stored (a retried rejection is decided again, which changes nothing the bidder owns).
-- The first answer wins: a redelivered change never replaces a stored reply.
CREATE TABLE replies (
    auction_id TEXT    NOT NULL REFERENCES auctions (id),
    bidder_id  TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL,  -- the seq the request was decided at
    state      TEXT    NOT NULL,  -- AuctionState as JSON, as of `seq`
    stored_at  INTEGER NOT NULL,  -- server ms, for the engine's idempotency window
    PRIMARY KEY (auction_id, bidder_id, request_id)
) STRICT;

-- What a restarting engine reloads: the replies of the last idempotency window.
CREATE INDEX replies_by_time ON replies (stored_at);
