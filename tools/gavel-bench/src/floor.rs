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
use std::sync::Arc;
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

pub fn run(args: &FloorArgs) -> anyhow::Result<()> {
    let limit = crate::sys::raise_fd_limit();
    let needed = args.sockets as u64 * 2 + 64;
    anyhow::ensure!(
        limit.soft >= needed,
        "{} sockets need {needed} open files; the limit here is {}",
        args.sockets,
        limit.soft
    );
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut writers = Vec::with_capacity(args.sockets);
    let mut readers = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        let client = TcpStream::connect(addr).with_context(|| format!("connection {i}"))?;
        let (server, _) = listener.accept()?;
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        client.set_nonblocking(true)?;
        writers.push(server);
        readers.push(client);
    }
    let frame = frame(args.bytes);
    let expected_per_round = (frame.len() * args.sockets) as u64;
    let received = Arc::new(AtomicU64::new(0));
    let reader_cpu = Arc::new(AtomicU64::new(0));
    let total = expected_per_round * args.rounds as u64;
    let reader = {
        let received = received.clone();
        let reader_cpu = reader_cpu.clone();
        std::thread::spawn(move || read_all(readers, total, &received, &reader_cpu))
    };
    eprintln!(
        "floor: {} loopback connections, {} rounds of one {}-byte frame each",
        args.sockets,
        args.rounds,
        frame.len()
    );
    let mut write_cpu = 0;
    let mut round_times = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let start = Instant::now();
        let cpu = thread_cpu_us();
        for w in writers.iter_mut() {
            w.write_all(&frame)?;
        }
        write_cpu += thread_cpu_us() - cpu;
        let target = expected_per_round * (round as u64 + 1);
        while received.load(Ordering::Acquire) < target {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "the reader stopped receiving"
            );
            std::thread::yield_now();
        }
        round_times.push(start.elapsed());
        eprint!("\rround {}/{}", round + 1, args.rounds);
        // A pause like the 100 ms between bids at 10 bids/s, so rounds do not overlap.
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!();
    reader.join().expect("the reader thread")?;
    let frames = (args.sockets * args.rounds) as f64;
    round_times.sort();
    let median = round_times[round_times.len() / 2];
    let worst = round_times[round_times.len() - 1];
    println!(
        "sender CPU per frame:   {:.2} µs (one write per socket; on loopback includes the receiving socket's TCP work)",
        write_cpu as f64 / frames
    );
    println!(
        "receiver CPU per frame: {:.2} µs (epoll + read)",
        reader_cpu.load(Ordering::Acquire) as f64 / frames
    );
    println!(
        "one round to all {} readers: median {:.1} ms, worst {:.1} ms",
        args.sockets,
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
    Ok(())
}

fn read_all(
    readers: Vec<TcpStream>,
    total: u64,
    received: &AtomicU64,
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
        received.store(got, Ordering::Release);
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
        run(&FloorArgs {
            sockets: 20,
            rounds: 2,
            bytes: 100,
        })
        .unwrap();
    }
}
