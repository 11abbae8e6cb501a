-- 002_replies: the first answer to every accepted request, so that a retry after the
-- auction's hot state has left the authority gets exactly that answer again.
--
-- A reply is the auction's state right after the request was decided, as the JSON of
-- gavel-core's AuctionState. The request was accepted, so the requester led at that seq:
-- a proxy maximum in it is the requester's own, never anyone else's. The first answer
-- wins: a redelivered change never replaces a stored reply.
CREATE TABLE replies (
    auction_id TEXT   NOT NULL REFERENCES auctions (id),
    bidder_id  TEXT   NOT NULL,
    request_id TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    state      JSONB  NOT NULL,
    stored_at  BIGINT NOT NULL,
    PRIMARY KEY (auction_id, bidder_id, request_id)
);

CREATE INDEX replies_by_time ON replies (stored_at);
