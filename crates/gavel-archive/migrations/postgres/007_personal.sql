-- 007_personal: what each signed-in user follows, and what happens after a sale
-- (PostgreSQL, distributed mode; the same tables as the SQLite archive).
--
-- `watchlist`: one row per (user, auction) the user watches. No foreign key to `auctions`:
-- an auction reaches PostgreSQL with the drainer, possibly after someone watched it; the
-- server checks that the auction exists (in the engine) before storing the row.
--
-- `bids_by_bidder` serves "the auctions I bid on" ("My bids") without a scan.
--
-- `next_steps`: what the winner is told to do after the close, set by an admin at any
-- time (not part of the sealed spec), shown to the winner only.
CREATE TABLE watchlist (
    bidder_id  TEXT   NOT NULL,
    auction_id TEXT   NOT NULL,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (bidder_id, auction_id)
);

CREATE INDEX watchlist_by_bidder ON watchlist (bidder_id, added_at DESC);

CREATE INDEX bids_by_bidder ON bids (bidder_id, auction_id, placed_at);

CREATE TABLE next_steps (
    auction_id TEXT   PRIMARY KEY,
    text       TEXT   NOT NULL,
    url        TEXT,
    updated_at BIGINT NOT NULL
);
