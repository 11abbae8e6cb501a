-- 006_log: the verifiable bid log (gavel-core's `chain` module, docs/verification.md).
--
-- One row per accepted change of an auction (creation, opening, bids, automatic bids,
-- a leader raising their maximum, the closing), written in the same transaction as the
-- change itself. `entry` is the public log entry as JSON (never a proxy maximum or the
-- reserve); `hash` is hash_seq = SHA-256(hash_{seq-1} ‖ canonical encoding of the entry),
-- lowercase hex. `gavel verify` recomputes every hash from the entries, so a row changed,
-- removed, reordered or added behind the server's back is reported by its seq.
-- Auctions stored before this migration have no rows here.
CREATE TABLE log_entries (
    auction_id TEXT    NOT NULL REFERENCES auctions (id),
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL,  -- created | opened | bid | auto | buy_now | max_raised | closed
    at         INTEGER NOT NULL,  -- server ms of the change
    entry      TEXT    NOT NULL,  -- gavel_core::chain::LogEntry as JSON
    hash       TEXT    NOT NULL,  -- hash_seq, 64 lowercase hex digits
    PRIMARY KEY (auction_id, seq)
) STRICT;
