-- 008_search: find auctions by words, category, price and time (GET /api/auctions/search).
--
-- The columns a search filters and sorts on are computed from the JSON already stored, so
-- no write path changes and nothing can drift: VIRTUAL generated columns (SQLite allows
-- adding those with ALTER TABLE), indexed where a query starts from them.
--   category       the spec's category (NULL when it has none)
--   starts_at      the spec's start
--   current_price  the price to beat: the state's price, or the starting price before the
--                  first bid (minor units)
-- A row whose JSON does not parse gives NULLs rather than failing the write: reading it
-- reports it as corrupt, as before.
-- Free text goes through an FTS5 table over the spec's title and description, filled by
-- triggers (the spec never changes after creation). It holds the auction id, not the
-- rowid: `auctions` has no INTEGER PRIMARY KEY, so VACUUM (and VACUUM INTO, the backup)
-- may renumber its rowids.
-- `unicode61` without diacritic removal folds case like PostgreSQL's `simple`
-- configuration does, so both archives match the same words.
ALTER TABLE auctions ADD COLUMN category TEXT
    GENERATED ALWAYS AS (CASE WHEN json_valid(spec) THEN json_extract(spec, '$.category') END)
    VIRTUAL;
ALTER TABLE auctions ADD COLUMN starts_at INTEGER
    GENERATED ALWAYS AS (CASE WHEN json_valid(spec) THEN json_extract(spec, '$.starts_at') END)
    VIRTUAL;
ALTER TABLE auctions ADD COLUMN current_price INTEGER
    GENERATED ALWAYS AS (CASE WHEN json_valid(state) AND json_valid(spec)
                              THEN coalesce(json_extract(state, '$.price'),
                                            json_extract(spec, '$.starting_price')) END)
    VIRTUAL;

CREATE INDEX auctions_category ON auctions (category, ends_at, id) WHERE category IS NOT NULL;

CREATE VIRTUAL TABLE auctions_text USING fts5(
    id UNINDEXED, title, description,
    tokenize = 'unicode61 remove_diacritics 0'
);

INSERT INTO auctions_text (id, title, description)
SELECT id, json_extract(spec, '$.title'), json_extract(spec, '$.description') FROM auctions;

CREATE TRIGGER auctions_text_insert AFTER INSERT ON auctions BEGIN
    INSERT INTO auctions_text (id, title, description)
    VALUES (new.id, json_extract(new.spec, '$.title'), json_extract(new.spec, '$.description'));
END;

CREATE TRIGGER auctions_text_delete AFTER DELETE ON auctions BEGIN
    DELETE FROM auctions_text WHERE id = old.id;
END;
