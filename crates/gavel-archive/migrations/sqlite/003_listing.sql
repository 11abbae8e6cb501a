-- 003_listing: find auctions by status and time without reading every row.
--
-- `closed_at` (server ms; NULL while the auction has not closed) is copied out of the state
-- like `status` and `ends_at`. Two partial indexes serve the two listings:
--   live (not closed), by current end time:   WHERE closed_at IS NULL ORDER BY ends_at, id
--   closed, most recently closed first:        WHERE closed_at IS NOT NULL
--                                              ORDER BY closed_at DESC, id DESC
-- An engine starting up reads the live ones and those closed within its retention period
-- through the same indexes.
ALTER TABLE auctions ADD COLUMN closed_at INTEGER;

UPDATE auctions
   SET closed_at = (SELECT r.closed_at FROM results r WHERE r.auction_id = auctions.id)
 WHERE status = 'closed';

CREATE INDEX auctions_live ON auctions (ends_at, id) WHERE closed_at IS NULL;
CREATE INDEX auctions_closed ON auctions (closed_at DESC, id DESC) WHERE closed_at IS NOT NULL;
