//! `gavel-bench floor`: what this machine's kernel charges for the fan-out itself, with no
//! server in the way.
//!
//! Opens N loopback TCP connections to itself and, for each round, writes one WebSocket
//! text frame of the given size to every connection from one thread (what a server's
//! fan-out must do at the least: one `write` per watching socket), while another thread
//! reads them all with `epoll` (what the watchers must do at the least). It reports each
//! side's CPU time per frame and how long a round takes to reach every reader. On loopback
//! the receiving socket's TCP work runs in the sender's system call, so the sender's figure
//! is the floor under Gavel's "server CPU per delivered update", and the two together bound
//! the glass-to-glass latency a fan-out to N watchers can reach on these cores.

use anyhow::Context;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct FloorArgs {
    /// Connections to write to (each is one socket pair; needs twice as many file descriptors).
    #[arg(long, default_value_t = 5_000)]
    pub sockets: usize,
    /// Rounds: each writes one frame to every connection.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Payload bytes per frame (a bid update is ~250 bytes of JSON).
    #[arg(long, default_value_t = 250)]
    pub bytes: usize,
    /// Spread the sockets over N processes (each needs 2 files per socket under its own
    /// open-files limit), all writing each round at once.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub json: Option<std::path::PathBuf>,
}

/// CPU time of the calling thread, in microseconds.
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the struct passed to it.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// An unmasked server-to-client WebSocket text frame carrying `len` bytes.
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x81];
    match len {
        0..=125 => f.push(len as u8),
        126..=65_535 => {
            f.push(126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    f.extend(std::iter::repeat_n(b'x', len));
    f
}

/// One process's socket pairs: writers (the server's side) and a reader thread (the
/// watchers' side).
struct Pairs {
    writers: Vec<TcpStream>,
    frame: Vec<u8>,
    expected_per_round: u64,
    received: Arc<(Mutex<u64>, Condvar)>,
    reader_cpu: Arc<AtomicU64>,
    reader: std::thread::JoinHandle<anyhow::Result<()>>,
    write_cpu_us: u64,
    rounds_done: u64,
}

impl Pairs {
    fn open(sockets: usize, bytes: usize, rounds: usize) -> anyhow::Result<Pairs> {
        let limit = crate::sys::raise_fd_limit();
        let needed = sockets as u64 * 2 + 64;
        anyhow::ensure!(
            limit.soft >= needed,
            "{sockets} sockets need {needed} open files; the limit here is {} (use --workers)",
            limit.soft
        );
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut writers = Vec::with_capacity(sockets);
        let mut readers = Vec::with_capacity(sockets);
        for i in 0..sockets {
            let client = TcpStream::connect(addr).with_context(|| format!("connection {i}"))?;
            let (server, _) = listener.accept()?;
            client.set_nodelay(true)?;
            server.set_nodelay(true)?;
            client.set_nonblocking(true)?;
            writers.push(server);
            readers.push(client);
        }
        let frame = frame(bytes);
        let expected_per_round = (frame.len() * sockets) as u64;
        let received = Arc::new((Mutex::new(0u64), Condvar::new()));
        let reader_cpu = Arc::new(AtomicU64::new(0));
        let total = expected_per_round * rounds as u64;
        let reader = {
            let received = received.clone();
            let reader_cpu = reader_cpu.clone();
            std::thread::spawn(move || read_all(readers, total, &received, &reader_cpu))
        };
        Ok(Pairs {
            writers,
            frame,
            expected_per_round,
            received,
            reader_cpu,
            reader,
            write_cpu_us: 0,
            rounds_done: 0,
        })
    }

    /// Writes one frame to every socket and waits until the reader has them all.
    fn round(&mut self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let cpu = thread_cpu_us();
        for w in self.writers.iter_mut() {
            w.write_all(&self.frame)?;
        }
        self.write_cpu_us += thread_cpu_us() - cpu;
        self.rounds_done += 1;
        let target = self.expected_per_round * self.rounds_done;
        let (lock, cv) = &*self.received;
        let mut got = lock.lock().expect("the reader does not panic");
        while *got < target {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "the reader stopped receiving"
            );
            got = cv
                .wait_timeout(got, Duration::from_millis(100))
                .expect("the reader does not panic")
                .0;
        }
        Ok(start.elapsed())
    }

    /// (sender CPU µs, reader CPU µs) over every round.
    fn finish(self) -> anyhow::Result<(u64, u64)> {
        self.reader.join().expect("the reader thread")?;
        Ok((self.write_cpu_us, self.reader_cpu.load(Ordering::Acquire)))
    }
}

/// What a floor run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FloorReport {
    pub sockets: usize,
    pub workers: usize,
    pub rounds: usize,
    pub frame_bytes: usize,
    pub sender_cpu_us_per_frame: f64,
    pub receiver_cpu_us_per_frame: f64,
    /// Time for one round to reach every reader (in every worker), µs.
    pub round_median_us: u64,
    pub round_worst_us: u64,
    pub round_us: Vec<u64>,
}

pub fn run(args: &FloorArgs) -> anyhow::Result<()> {
    let report = if args.workers <= 1 {
        run_here(args)?
    } else {
        run_workers(args)?
    };
    println!(
        "sender CPU per frame:   {:.2} µs (one write per socket; on loopback includes the receiving socket's TCP work)",
        report.sender_cpu_us_per_frame
    );
    println!(
        "receiver CPU per frame: {:.2} µs (epoll + read)",
        report.receiver_cpu_us_per_frame
    );
    println!(
        "one round to all {} readers: median {:.1} ms, worst {:.1} ms",
        report.sockets,
        report.round_median_us as f64 / 1e3,
        report.round_worst_us as f64 / 1e3
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn summarize(args: &FloorArgs, mut rounds: Vec<u64>, write_cpu: u64, read_cpu: u64) -> FloorReport {
    let frames = (args.sockets * args.rounds).max(1) as f64;
    let order = rounds.clone();
    rounds.sort_unstable();
    FloorReport {
        sockets: args.sockets,
        workers: args.workers.max(1),
        rounds: args.rounds,
        frame_bytes: frame(args.bytes).len(),
        sender_cpu_us_per_frame: write_cpu as f64 / frames,
        receiver_cpu_us_per_frame: read_cpu as f64 / frames,
        round_median_us: rounds.get(rounds.len() / 2).copied().unwrap_or(0),
        round_worst_us: rounds.last().copied().unwrap_or(0),
        round_us: order,
    }
}

fn run_here(args: &FloorArgs) -> anyhow::Result<FloorReport> {
    let mut pairs = Pairs::open(args.sockets, args.bytes, args.rounds)?;
    eprintln!(
        "floor: {} loopback connections, {} rounds of one {}-byte frame each",
        args.sockets,
        args.rounds,
        pairs.frame.len()
    );
    let mut round_times = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        round_times.push(pairs.round()?.as_micros() as u64);
        eprint!("\rround {}/{}", round + 1, args.rounds);
        // A pause like the 100 ms between bids at 10 bids/s, so rounds do not overlap.
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!();
    let (w, r) = pairs.finish()?;
    Ok(summarize(args, round_times, w, r))
}

/// `floor --workers N`: N processes (`__floor-worker`), each with its share of the socket
/// pairs under its own open-files limit, all writing each round at the same moment (as
/// several server nodes fanning out one update do). A round ends when the last reader of
/// the last worker has its frame.
fn run_workers(args: &FloorArgs) -> anyhow::Result<FloorReport> {
    use std::io::BufRead;
    let exe = std::env::current_exe()?;
    let n = args.workers;
    let mut children = Vec::new();
    for i in 0..n {
        let share = args.sockets * (i + 1) / n - args.sockets * i / n;
        let mut child = std::process::Command::new(&exe)
            .arg("__floor-worker")
            .arg(format!("--sockets={share}"))
            .arg(format!("--rounds={}", args.rounds))
            .arg(format!("--bytes={}", args.bytes))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting floor worker {i}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        children.push((child, stdin, stdout.lines()));
    }
    let expect = |lines: &mut std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
                  i: usize,
                  what: &str|
     -> anyhow::Result<Vec<u64>> {
        let line = lines
            .next()
            .with_context(|| format!("floor worker {i} exited before `{what}`"))??;
        let mut f = line.split_whitespace();
        anyhow::ensure!(
            f.next() == Some(what),
            "floor worker {i}: expected `{what}`, got {line:?}"
        );
        f.map(|x| {
            x.parse()
                .with_context(|| format!("floor worker {i}: {line:?}"))
        })
        .collect()
    };
    for (i, c) in children.iter_mut().enumerate() {
        expect(&mut c.2, i, "ready")?;
    }
    eprintln!(
        "floor: {} loopback connections in {n} processes, {} rounds of one {}-byte frame each",
        args.sockets,
        args.rounds,
        frame(args.bytes).len()
    );
    let mut round_times = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let start = crate::sys::monotonic_us();
        for c in children.iter_mut() {
            writeln!(c.1, "go")?;
            c.1.flush()?;
        }
        let mut last = start;
        for (i, c) in children.iter_mut().enumerate() {
            let done = expect(&mut c.2, i, "done")?;
            last = last.max(done.first().copied().unwrap_or(start));
        }
        round_times.push(last - start);
        eprint!("\rround {}/{}", round + 1, args.rounds);
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!();
    let (mut w, mut r) = (0, 0);
    for (i, c) in children.iter_mut().enumerate() {
        writeln!(c.1, "end")?;
        c.1.flush()?;
        let cpu = expect(&mut c.2, i, "cpu")?;
        anyhow::ensure!(cpu.len() == 2, "floor worker {i}: bad cpu line");
        w += cpu[0];
        r += cpu[1];
    }
    for (mut child, stdin, _) in children {
        drop(stdin);
        let _ = child.wait();
    }
    Ok(summarize(args, round_times, w, r))
}

#[derive(clap::Args, Debug, Clone)]
pub struct FloorWorkerArgs {
    #[arg(long)]
    pub sockets: usize,
    #[arg(long)]
    pub rounds: usize,
    #[arg(long)]
    pub bytes: usize,
}

/// `__floor-worker`: opens its pairs, says `ready`; on each `go` writes a round and says
/// `done <monotonic µs when its reader had it all>`; on `end` says `cpu <sender µs> <reader µs>`.
pub fn worker(args: &FloorWorkerArgs) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut pairs = Pairs::open(args.sockets, args.bytes, args.rounds)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        match line?.trim() {
            "go" => {
                pairs.round()?;
                writeln!(out, "done {}", crate::sys::monotonic_us())?;
                out.flush()?;
            }
            "end" => {
                let (w, r) = pairs.finish()?;
                writeln!(out, "cpu {w} {r}")?;
                out.flush()?;
                return Ok(());
            }
            other => anyhow::bail!("unexpected command {other:?}"),
        }
    }
    Ok(())
}

fn read_all(
    readers: Vec<TcpStream>,
    total: u64,
    received: &(Mutex<u64>, Condvar),
    cpu_out: &AtomicU64,
) -> anyhow::Result<()> {
    let start_cpu = thread_cpu_us();
    // SAFETY: plain epoll calls on descriptors this function owns for its whole run.
    let ep = unsafe { libc::epoll_create1(0) };
    anyhow::ensure!(ep >= 0, "epoll_create1 failed");
    for (i, r) in readers.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, r.as_raw_fd(), &mut ev) };
        anyhow::ensure!(rc == 0, "epoll_ctl failed");
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = [0u8; 4096];
    let mut got = 0u64;
    let mut readers = readers;
    while got < total {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 1000) };
        anyhow::ensure!(n >= 0, "epoll_wait failed");
        for ev in &events[..n as usize] {
            let r = &mut readers[ev.u64 as usize];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => anyhow::bail!("a connection closed"),
                    Ok(k) => got += k as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        *received.0.lock().expect("the writer does not panic") = got;
        received.1.notify_all();
    }
    unsafe { libc::close(ep) };
    cpu_out.store(thread_cpu_us() - start_cpu, Ordering::Release);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_websocket_header_for_their_length() {
        assert_eq!(&frame(3)[..2], &[0x81, 3]);
        assert_eq!(&frame(250)[..4], &[0x81, 126, 0, 250]);
        assert_eq!(frame(250).len(), 254);
    }

    #[test]
    fn a_small_run_delivers_every_frame() {
        let args = FloorArgs {
            sockets: 20,
            rounds: 2,
            bytes: 100,
            workers: 0,
            json: None,
        };
        let r = run_here(&args).unwrap();
        assert_eq!(r.round_us.len(), 2);
        assert!(r.sender_cpu_us_per_frame >= 0.0 && r.round_worst_us >= r.round_median_us);
    }
}
