-- 007_personal: what each signed-in user follows, and what happens after a sale.
--
-- `watchlist`: one row per (user, auction) the user watches, newest first by `added_at`
-- (server ms). No foreign key to `auctions`: in distributed mode an auction reaches the
-- archive with the drainer, possibly after someone watched it; the server checks the
-- auction exists (in the engine) before storing the row.
--
-- `bids_by_bidder` serves "the auctions I bid on" ("My bids") from the bids table without
-- a scan:  WHERE bidder_id = ? GROUP BY auction_id ORDER BY max(placed_at) DESC.
--
-- `next_steps`: what the winner of an auction is told to do after the close (a text and/or
-- a link), set by an admin at any time (not part of the sealed spec). Shown to the winner
-- only (docs/protocol.md "Personal channel").
CREATE TABLE watchlist (
    bidder_id  TEXT    NOT NULL,
    auction_id TEXT    NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (bidder_id, auction_id)
) STRICT;

CREATE INDEX watchlist_by_bidder ON watchlist (bidder_id, added_at DESC);

CREATE INDEX bids_by_bidder ON bids (bidder_id, auction_id, placed_at);

CREATE TABLE next_steps (
    auction_id TEXT    PRIMARY KEY,
    text       TEXT    NOT NULL,
    url        TEXT,
    updated_at INTEGER NOT NULL
) STRICT;
