//! One call of `scripts/commit.lua`: what the node asks it to write, and its answer, parsed
//! once into [`ScriptReply`].

use super::keys::Keys;
use super::wire::{WireChange, WireError};
use gavel_core::{AuctionId, Millis};

/// The commit script (the only script that changes an auction).
pub(super) const COMMIT_LUA: &str = include_str!("scripts/commit.lua");
/// The drainer's trim (never drops an unacknowledged entry).
pub(super) const TRIM_LUA: &str = include_str!("scripts/trim.lua");

/// History entries kept in an auction's recent list.
pub(super) const RECENT: usize = 50;

/// What a node asks the commit script to write, if nothing moved.
#[derive(Clone, Debug, Default)]
pub(super) struct Commit {
    /// The `seq` the decision was made on (0: the auction must not exist yet).
    pub expected_seq: u64,
    /// The time the decision was made at.
    pub at: Millis,
    /// The new seq and the change JSON, when the state changes.
    pub change: Option<(u64, String)>,
    /// A history entry for the recent list.
    pub entry: Option<String>,
    /// The change is the auction's last (it closed).
    pub last: bool,
    /// The reply to record under the request's key, and a recorded reply it may replace.
    pub record: Option<Record>,
    /// Creation: the spec JSON.
    pub spec: Option<String>,
}

#[derive(Clone, Debug)]
pub(super) struct Record {
    pub key: String,
    pub json: String,
    pub replaces: Option<String>,
}

/// Per-call settings the node adds.
pub(super) struct CallSettings<'a> {
    pub keys: &'a Keys,
    pub script_now: &'a str,
    pub max_lead: i64,
    pub ttl_secs: u64,
    pub group: &'a str,
}

impl Commit {
    /// The script's KEYS and ARGV, in order.
    pub(super) fn args(&self, id: &AuctionId, s: &CallSettings<'_>) -> (Vec<String>, Vec<String>) {
        let hash = s.keys.hash(id);
        let record_key = self
            .record
            .as_ref()
            .map_or_else(|| hash.clone(), |r| r.key.clone());
        let keys = vec![hash, s.keys.log(id), s.keys.recent(id), record_key];
        let (new_seq, change) = match &self.change {
            Some((seq, json)) => (seq.to_string(), json.clone()),
            None => (String::new(), String::new()),
        };
        let argv = vec![
            self.expected_seq.to_string(),
            self.at.to_string(),
            s.max_lead.to_string(),
            s.script_now.to_string(),
            new_seq,
            change,
            self.entry.clone().unwrap_or_default(),
            RECENT.to_string(),
            s.keys.channel(id),
            if self.last { "1" } else { "0" }.to_string(),
            self.record
                .as_ref()
                .map(|r| r.json.clone())
                .unwrap_or_default(),
            s.ttl_secs.max(1).to_string(),
            self.record
                .as_ref()
                .and_then(|r| r.replaces.clone())
                .unwrap_or_default(),
            self.spec.clone().unwrap_or_default(),
            s.group.to_string(),
        ];
        (keys, argv)
    }
}

/// What the commit script answered.
#[derive(Debug)]
pub(super) enum ScriptReply {
    /// Written, at Redis `TIME` `time`.
    Committed { time: Millis },
    /// Nothing written: the auction is at `seq` with `last` (both `None` when it does not
    /// exist), its clock is `clock`, and `TIME` was `time`.
    Moved {
        seq: Option<u64>,
        last: Option<WireChange>,
        clock: Millis,
        time: Millis,
    },
    /// The request was decided before: its recorded reply, and the auction as it is now.
    Repeat {
        record: String,
        last: Option<WireChange>,
    },
}

fn int<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, WireError> {
    s.parse()
        .map_err(|_| WireError(format!("commit reply: {what} {s:?}")))
}

fn opt_change(s: &str) -> Result<Option<WireChange>, WireError> {
    if s.is_empty() {
        Ok(None)
    } else {
        WireChange::parse(s).map(Some)
    }
}

impl ScriptReply {
    pub(super) fn parse(out: &[String]) -> Result<Self, WireError> {
        let field = |i: usize| {
            out.get(i)
                .map(String::as_str)
                .ok_or_else(|| WireError(format!("short commit reply {out:?}")))
        };
        match field(0)? {
            "ok" => Ok(ScriptReply::Committed {
                time: int(field(1)?, "time")?,
            }),
            "moved" => {
                let seq = field(1)?;
                Ok(ScriptReply::Moved {
                    seq: if seq.is_empty() {
                        None
                    } else {
                        Some(int(seq, "seq")?)
                    },
                    last: opt_change(field(2)?)?,
                    clock: int(field(3)?, "clock")?,
                    time: int(field(4)?, "time")?,
                })
            }
            "repeat" => Ok(ScriptReply::Repeat {
                record: field(1)?.to_string(),
                last: opt_change(field(3)?)?,
            }),
            other => Err(WireError(format!("commit replied {other:?}"))),
        }
    }
}
