//! Writing histories: a thread-safe recorder that clients (tests, the load generator) call
//! as each operation completes.

use crate::history::{Header, History, Record, FORMAT};
use parking_lot::Mutex;
use std::io::Write;
use std::path::Path;

/// The recorder's clock: UTC microseconds from the system clock, the same clock a server on
/// this machine decides with, so a history from one machine can use `clock_skew_ms` 0.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

enum Sink {
    Memory(Vec<Record>),
    File(std::io::BufWriter<std::fs::File>),
}

/// Collects records in memory or streams them to a file. Records may arrive in any order
/// (each carries its own times); the checker sorts them out.
pub struct Recorder {
    header: Header,
    sink: Mutex<Sink>,
    /// The first write error, kept so `finish` can report it (recording never panics).
    error: Mutex<Option<std::io::Error>>,
}

impl Recorder {
    fn header(clock_skew_ms: i64, source: Option<String>) -> Header {
        Header {
            format: FORMAT,
            clock_skew_ms,
            unrecorded_admin: false,
            source,
        }
    }

    /// A recorder that keeps the history in memory (see [`Recorder::history`]).
    pub fn in_memory(clock_skew_ms: i64, source: Option<String>) -> Recorder {
        Recorder {
            header: Self::header(clock_skew_ms, source),
            sink: Mutex::new(Sink::Memory(Vec::new())),
            error: Mutex::new(None),
        }
    }

    /// A recorder that writes JSON Lines to `path` (created or truncated), header first.
    pub fn to_file(
        path: &Path,
        clock_skew_ms: i64,
        source: Option<String>,
    ) -> std::io::Result<Recorder> {
        let header = Self::header(clock_skew_ms, source);
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(w, "{}", Record::History(header.clone()).to_line())?;
        Ok(Recorder {
            header,
            sink: Mutex::new(Sink::File(w)),
            error: Mutex::new(None),
        })
    }

    /// Declares that admin actions may happen that this history will not record (see
    /// [`Header::unrecorded_admin`]). Call before the first record.
    pub fn with_unrecorded_admin(mut self) -> Recorder {
        self.header.unrecorded_admin = true;
        self
    }

    /// Adds one operation.
    pub fn record(&self, record: Record) {
        match &mut *self.sink.lock() {
            Sink::Memory(v) => v.push(record),
            Sink::File(w) => {
                if let Err(e) = writeln!(w, "{}", record.to_line()) {
                    self.error.lock().get_or_insert(e);
                }
            }
        }
    }

    /// What has been recorded so far (a file recorder returns only the header).
    pub fn history(&self) -> History {
        let records = match &*self.sink.lock() {
            Sink::Memory(v) => v.clone(),
            Sink::File(_) => Vec::new(),
        };
        History::from_records(self.header.clone(), records)
    }

    /// Flushes a file recorder; the first write error, if any.
    pub fn finish(&self) -> std::io::Result<()> {
        if let Some(e) = self.error.lock().take() {
            return Err(e);
        }
        match &mut *self.sink.lock() {
            Sink::Memory(_) => Ok(()),
            Sink::File(w) => w.flush(),
        }
    }
}
