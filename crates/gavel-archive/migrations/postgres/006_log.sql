-- 006_log: the verifiable bid log (gavel-core's `chain` module, docs/verification.md).
--
-- One row per accepted change of an auction (creation, opening, bids, automatic bids,
-- a leader raising their maximum, the closing), written by the drainer in the same
-- statement as the change itself. `entry` is the public log entry as JSON text (never a
-- proxy maximum or the reserve; text, not jsonb, so it is served exactly as written);
-- `hash` is hash_seq = SHA-256(hash_{seq-1} ‖ canonical encoding of the entry), lowercase
-- hex. Auctions stored before this migration have no rows here.
CREATE TABLE log_entries (
    auction_id TEXT   NOT NULL REFERENCES auctions (id),
    seq        BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    entry      TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    PRIMARY KEY (auction_id, seq)
);
