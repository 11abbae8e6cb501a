//! Finding auctions: what a search asks for, and the SQL both archives run for it.
//!
//! The filter and order are written once here with numbered placeholders; SQLite (`?N`)
//! and PostgreSQL (`$N`) differ only in how a placeholder is spelled and in the free-text
//! test (FTS5 `MATCH` against `auctions_text`; `search @@ to_tsquery` on the GIN-indexed
//! `tsvector`). Both match the same words: case-folded, each a prefix, all of them
//! required (see `migrations/*/007_search.sql`).

use gavel_core::Millis;

/// The most words a query is cut to (more rarely narrows anything, and each costs a lookup).
pub const MAX_WORDS: usize = 8;
/// The longest word kept, in characters.
const MAX_WORD_CHARS: usize = 40;
/// The largest page.
pub const MAX_LIMIT: u32 = 100;
/// How far pages go: `offset + limit` at most this. Deeper pages cost a longer scan; a
/// narrower query is the way on.
pub const MAX_DEPTH: u32 = 10_000;

/// Which auctions, by where they are in their life at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SearchStatus {
    #[default]
    Any,
    /// Not ended: scheduled or open.
    Live,
    Scheduled,
    Open,
    /// Ended (closed, or past its end time and about to be announced).
    Closed,
}

/// The order of the results. Ties are broken by id, so pages never overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SearchSort {
    /// Live auctions first, ending soonest first; then ended ones, most recent end first.
    #[default]
    Ending,
    /// Latest start first.
    Newest,
    /// Cheapest current price (the price to beat) first.
    PriceLow,
    PriceHigh,
}

impl SearchStatus {
    pub const ALL: &'static [SearchStatus] = &[
        SearchStatus::Any,
        SearchStatus::Live,
        SearchStatus::Scheduled,
        SearchStatus::Open,
        SearchStatus::Closed,
    ];

    /// The name in `GET /api/search?status=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SearchStatus::Any => "any",
            SearchStatus::Live => "live",
            SearchStatus::Scheduled => "scheduled",
            SearchStatus::Open => "open",
            SearchStatus::Closed => "closed",
        }
    }
}

impl std::str::FromStr for SearchStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        SearchStatus::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == s)
            .ok_or(())
    }
}

impl SearchSort {
    pub const ALL: &'static [SearchSort] = &[
        SearchSort::Ending,
        SearchSort::Newest,
        SearchSort::PriceLow,
        SearchSort::PriceHigh,
    ];

    /// The name in `GET /api/search?sort=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SearchSort::Ending => "ending",
            SearchSort::Newest => "newest",
            SearchSort::PriceLow => "price_asc",
            SearchSort::PriceHigh => "price_desc",
        }
    }
}

impl std::str::FromStr for SearchSort {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        SearchSort::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == s)
            .ok_or(())
    }
}

/// One search. Every field narrows the result; the default finds every auction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Words every result's title or description holds (as prefixes); see [`words`].
    pub words: Vec<String>,
    pub category: Option<String>,
    pub status: SearchStatus,
    /// Current price (the price to beat, minor units) at least this.
    pub min_price: Option<i64>,
    /// Current price at most this.
    pub max_price: Option<i64>,
    /// Only live auctions ending at or before this time (server ms).
    pub ends_before: Option<Millis>,
    pub sort: SearchSort,
    /// The time the statuses are judged at (server ms).
    pub now: Millis,
    pub offset: u32,
    pub limit: u32,
}

/// The words of a free-text query as both archives index them: runs of letters and
/// digits, lower-cased; at most [`MAX_WORDS`], each cut to 40 characters. Everything else
/// (quotes, operators, punctuation) separates words, so no query syntax reaches the
/// database.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD_CHARS)
                .collect::<String>()
                .to_lowercase()
        })
        .take(MAX_WORDS)
        .collect()
}

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// The SQL dialect a statement is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A search as one statement selecting `id, spec, state` (as text), and its parameters.
pub(crate) fn statement(q: &SearchQuery, dialect: Dialect) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    // PostgreSQL placeholders carry their type, so none depends on inference.
    let mut bind = |p: Param| {
        let cast = match (&p, dialect) {
            (_, Dialect::Sqlite) => "",
            (Param::Int(_), Dialect::Postgres) => "::int8",
            (Param::Text(_), Dialect::Postgres) => "::text",
        };
        params.push(p);
        match dialect {
            Dialect::Sqlite => format!("?{}", params.len()),
            Dialect::Postgres => format!("${}{cast}", params.len()),
        }
    };
    // Words from `words` hold letters and digits only; a caller's own are cleaned the same
    // way, so no quote or operator reaches either query language.
    let clean: Vec<String> = q
        .words
        .iter()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .collect();
    // `now` is bound only when a clause reads it: PostgreSQL refuses a parameter that no
    // clause gives a type to.
    let needs_now =
        q.status != SearchStatus::Any || q.ends_before.is_some() || q.sort == SearchSort::Ending;
    let now = if needs_now {
        bind(Param::Int(q.now))
    } else {
        String::new()
    };
    let live = format!("(closed_at IS NULL AND ends_at > {now})");
    let mut clauses = Vec::new();
    if !clean.is_empty() {
        match dialect {
            Dialect::Sqlite => {
                // `"word"*`: a quoted prefix term; the words hold letters and digits only.
                let terms: Vec<String> = clean.iter().map(|w| format!("\"{w}\"*")).collect();
                let m = bind(Param::Text(terms.join(" ")));
                clauses.push(format!(
                    "id IN (SELECT id FROM auctions_text WHERE auctions_text MATCH {m})"
                ));
            }
            Dialect::Postgres => {
                let terms: Vec<String> = clean.iter().map(|w| format!("{w}:*")).collect();
                let m = bind(Param::Text(terms.join(" & ")));
                clauses.push(format!("search @@ to_tsquery('simple', {m})"));
            }
        }
    }
    if let Some(c) = &q.category {
        clauses.push(format!("category = {}", bind(Param::Text(c.clone()))));
    }
    match q.status {
        SearchStatus::Any => {}
        SearchStatus::Live => clauses.push(live.clone()),
        SearchStatus::Scheduled => clauses.push(format!("{live} AND starts_at > {now}")),
        SearchStatus::Open => clauses.push(format!("{live} AND starts_at <= {now}")),
        SearchStatus::Closed => clauses.push(format!("NOT {live}")),
    }
    if let Some(p) = q.min_price {
        clauses.push(format!("current_price >= {}", bind(Param::Int(p))));
    }
    if let Some(p) = q.max_price {
        clauses.push(format!("current_price <= {}", bind(Param::Int(p))));
    }
    if let Some(t) = q.ends_before {
        clauses.push(format!("{live} AND ends_at <= {}", bind(Param::Int(t))));
    }
    let order = match q.sort {
        SearchSort::Ending => format!(
            "CASE WHEN {live} THEN 0 ELSE 1 END, \
             CASE WHEN {live} THEN ends_at ELSE -ends_at END, id"
        ),
        SearchSort::Newest => "starts_at DESC, id DESC".to_string(),
        SearchSort::PriceLow => "current_price, id".to_string(),
        SearchSort::PriceHigh => "current_price DESC, id DESC".to_string(),
    };
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let limit = bind(Param::Int(i64::from(q.limit)));
    let offset = bind(Param::Int(i64::from(q.offset)));
    let (spec, state) = match dialect {
        Dialect::Sqlite => ("spec", "state"),
        Dialect::Postgres => ("spec::text", "state::text"),
    };
    (
        format!(
            "SELECT id, {spec}, {state} FROM auctions{filter} ORDER BY {order} \
             LIMIT {limit} OFFSET {offset}"
        ),
        params,
    )
}

/// The categories of live auctions with how many each holds, by name.
pub(crate) const CATEGORIES: &str = "\
    SELECT category, count(*) FROM auctions
    WHERE category IS NOT NULL AND closed_at IS NULL
    GROUP BY category ORDER BY category LIMIT 500";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_lower_cased() {
        assert_eq!(
            words("  Rolex\"* OR 1=1; Sub-mariner "),
            ["rolex", "or", "1", "1", "sub", "mariner"]
        );
        assert_eq!(words("ÉCU d'or"), ["écu", "d", "or"]);
        assert!(words("\"*:&|!()").is_empty());
        assert_eq!(words("a b c d e f g h i j").len(), MAX_WORDS);
        assert_eq!(words(&"x".repeat(100))[0].len(), 40);
    }

    #[test]
    fn status_and_sort_names_read_back() {
        for s in SearchStatus::ALL {
            assert_eq!(s.as_str().parse::<SearchStatus>(), Ok(*s));
        }
        for s in SearchSort::ALL {
            assert_eq!(s.as_str().parse::<SearchSort>(), Ok(*s));
        }
        assert!("OPEN".parse::<SearchStatus>().is_err());
        assert!("price".parse::<SearchSort>().is_err());
    }

    #[test]
    fn placeholders_follow_the_dialect_and_the_parameters() {
        let q = SearchQuery {
            words: vec!["lamp".into()],
            category: Some("lighting".into()),
            min_price: Some(100),
            limit: 10,
            ..SearchQuery::default()
        };
        let (sql, params) = statement(&q, Dialect::Postgres);
        assert!(sql.contains("to_tsquery('simple', $2::text)"), "{sql}");
        assert!(sql.contains("LIMIT $5::int8 OFFSET $6::int8"), "{sql}");
        assert_eq!(params[1], Param::Text("lamp:*".into()));
        let (sql, params) = statement(&q, Dialect::Sqlite);
        assert!(sql.contains("MATCH ?2"), "{sql}");
        assert_eq!(params[1], Param::Text("\"lamp\"*".into()));
        assert_eq!(params.len(), 6);
    }
}
