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
    /// The version the decision was made on (empty: the auction must not exist yet).
    pub expected: String,
    /// The clocks `[lo, hi)` at which the decision holds (see `guard.rs`).
    pub guard: (Millis, Millis),
    /// The new state, when it changes.
    pub change: Option<NewState>,
    /// A history entry for the recent list.
    pub entry: Option<String>,
    /// The change is the auction's last (it closed).
    pub last: bool,
    /// The reply to record under the request's key.
    pub record: Option<Record>,
    /// Creation: the spec JSON.
    pub spec: Option<String>,
    /// The JSON holds clock markers for the script to fill.
    pub marked: bool,
}

#[derive(Clone, Debug)]
pub(super) struct NewState {
    /// Unique per committed change: what the next commit compares.
    pub version: String,
    pub seq: u64,
    /// The change JSON (with clock markers if `marked`).
    pub json: String,
}

#[derive(Clone, Debug)]
pub(super) struct Record {
    pub key: String,
    pub json: String,
    /// A recorded reply this one may replace.
    pub replaces: Option<String>,
}

/// Per-call settings the node adds.
pub(super) struct CallSettings<'a> {
    pub keys: &'a Keys,
    pub script_now: &'a str,
    /// The node's clock floor (`''`: none), see `AuthorityClock::script_floor`.
    pub floor: &'a str,
    pub ttl_secs: u64,
    pub group: &'a str,
    /// Redis Cluster: publish on the auction's sharded channel (`SPUBLISH`).
    pub sharded: bool,
}

impl Commit {
    /// The script's KEYS and ARGV, in order.
    pub(super) fn args(&self, id: &AuctionId, s: &CallSettings<'_>) -> (Vec<String>, Vec<String>) {
        let hash = s.keys.hash(id);
        let record_key = self
            .record
            .as_ref()
            .map_or_else(|| hash.clone(), |r| r.key.clone());
        let keys = vec![
            hash,
            s.keys.log(id),
            s.keys.recent(id),
            record_key,
            s.keys.reqs(id),
        ];
        let (version, seq, change) = match &self.change {
            Some(c) => (c.version.clone(), c.seq.to_string(), c.json.clone()),
            None => Default::default(),
        };
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let argv = vec![
            self.expected.clone(),
            self.guard.0.to_string(),
            self.guard.1.to_string(),
            s.script_now.to_string(),
            version,
            seq,
            change,
            self.entry.clone().unwrap_or_default(),
            RECENT.to_string(),
            if s.sharded {
                s.keys.shard_channel(id)
            } else {
                s.keys.channel(id)
            },
            flag(self.last),
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
            flag(self.marked),
            s.floor.to_string(),
            if s.sharded { "s" } else { "" }.to_string(),
        ];
        (keys, argv)
    }
}

/// What the commit script answered.
#[derive(Debug)]
pub(super) enum ScriptReply {
    /// Written, at the auction's clock `clock`.
    Committed { clock: Millis },
    /// Nothing written: the auction is at `version` with `last` (both `None` when it does
    /// not exist), and its clock is `clock`.
    Moved {
        version: Option<String>,
        last: Option<WireChange>,
        clock: Millis,
    },
    /// The request was decided before: its recorded reply, and the auction as it is now.
    Repeat {
        record: String,
        last: Option<WireChange>,
    },
}

fn int(s: &str, what: &str) -> Result<Millis, WireError> {
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
                clock: int(field(1)?, "clock")?,
            }),
            "moved" => {
                let version = field(1)?;
                Ok(ScriptReply::Moved {
                    version: (!version.is_empty()).then(|| version.to_string()),
                    last: opt_change(field(2)?)?,
                    clock: int(field(3)?, "clock")?,
                })
            }
            "repeat" => Ok(ScriptReply::Repeat {
                record: field(1)?.to_string(),
                last: opt_change(field(2)?)?,
            }),
            other => Err(WireError(format!("commit replied {other:?}"))),
        }
    }
}
