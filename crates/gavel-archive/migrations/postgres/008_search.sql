-- 008_search: find auctions by words, category, price and time (GET /api/auctions/search).
--
-- The columns a search filters and sorts on are STORED generated columns computed from
-- the JSON already written, so no write path changes and nothing can drift:
--   category       the spec's category (NULL when it has none)
--   starts_at      the spec's start
--   current_price  the price to beat: the state's price, or the starting price before the
--                  first bid (minor units)
--   search         title and description as a tsvector, under a GIN index
-- The `simple` configuration (no stemming, no stop words, case folded) matches words as
-- SQLite's FTS5 `unicode61` tokenizer does, so both archives find the same auctions.
ALTER TABLE auctions
    ADD COLUMN category TEXT GENERATED ALWAYS AS (spec ->> 'category') STORED,
    ADD COLUMN starts_at BIGINT GENERATED ALWAYS AS ((spec ->> 'starts_at')::bigint) STORED,
    ADD COLUMN current_price BIGINT GENERATED ALWAYS AS
        (coalesce((state ->> 'price')::bigint, (spec ->> 'starting_price')::bigint)) STORED,
    ADD COLUMN search tsvector GENERATED ALWAYS AS
        (to_tsvector('simple'::regconfig,
                     coalesce(spec ->> 'title', '') || ' ' || coalesce(spec ->> 'description', '')))
        STORED;

CREATE INDEX auctions_search ON auctions USING GIN (search);
CREATE INDEX auctions_category ON auctions (category, ends_at, id) WHERE category IS NOT NULL;
