//! The Redis engine's scripts hold no auction rule (issue 13): every rule lives once, in
//! `gavel_core::rules`, and the scripts only compare and write. This test fails if a rule
//! comes back into Lua: the scripts must stay small, use no rule vocabulary, and never
//! parse the JSON they store (decoding it is where a rule would start).

use std::path::{Path, PathBuf};

/// Lines of Lua a script may have, comments included.
const LINE_BUDGET: usize = 90;

/// Words that name auction rules or their data. None belongs in a generic compare-and-swap.
const RULE_WORDS: &[&str] = &[
    "min_bid",
    "reserve",
    "buy_now",
    "buy-now",
    "soft",
    "increment",
    "extend",
    "proxy",
    "leader",
    "outbid",
    "price",
    "amount",
    "winner",
    "starts_at",
    "ends_at",
    "status",
    "stale",
    "scheduled",
    "max_bid",
    "closing",
    "bid_count",
];

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/redis/scripts")
}

fn scripts() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(scripts_dir())
        .expect("scripts directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).expect("readable"),
            )
        })
        .collect();
    out.sort();
    out
}

/// Everything wrong with one script, empty when it is fine.
fn problems(name: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines = text.lines().count();
    if lines > LINE_BUDGET {
        out.push(format!(
            "{name}: {lines} lines, over the budget of {LINE_BUDGET}"
        ));
    }
    let lower = text.to_lowercase();
    for word in RULE_WORDS {
        if lower.contains(word) {
            out.push(format!("{name}: names a rule ({word:?})"));
        }
    }
    if lower.contains("cjson") {
        out.push(format!(
            "{name}: decodes stored JSON (cjson): deciding belongs in Rust"
        ));
    }
    out
}

#[test]
fn the_scripts_are_small_and_contain_no_auction_rule() {
    let scripts = scripts();
    let names: Vec<&str> = scripts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "commit.lua",
            "dead_letter.lua",
            "replay_dead.lua",
            "retire.lua",
            "trim.lua"
        ],
        "one commit script, the drainer's log upkeep (trim, dead letters) and retirement \
         (a closed, archived auction's keys leaving Redis in one step); a new script needs \
         a reason here"
    );
    let all: Vec<String> = scripts.iter().flat_map(|(n, t)| problems(n, t)).collect();
    assert!(all.is_empty(), "{all:#?}");
}

#[test]
fn the_check_catches_a_rule_restated_in_lua() {
    // What the old place_bid.lua looked like: the check must refuse it.
    let old = "local function min_bid_of(a)\n  if a.price == nil then return a.sp end\n\
               return sat(a.price, inc_at(a, a.price))\nend\n\
               local r = cjson.decode(ARGV[1])\n";
    let found = problems("old.lua", old);
    assert!(found.iter().any(|p| p.contains("min_bid")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("price")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("cjson")), "{found:?}");
    let long = "-- x\n".repeat(LINE_BUDGET + 1);
    assert!(problems("long.lua", &long)[0].contains("over the budget"));
}
