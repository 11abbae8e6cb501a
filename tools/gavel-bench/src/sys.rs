//! What the operating system is asked: file-descriptor limits, a server's RSS and CPU time
//! from `/proc`, and client sockets bound to chosen loopback source addresses.

use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use tokio::net::{TcpSocket, TcpStream};

/// `RLIMIT_NOFILE` of this process.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FdLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (raising the hard one needs
/// `CAP_SYS_RESOURCE`, which this machine's root does not have). A spawned server inherits it.
pub fn raise_fd_limit() -> FdLimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    FdLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    }
}

/// The soft open-files limit of another process (`/proc/PID/limits`).
pub fn fd_limit_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// A process's resident memory and CPU time at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcSample {
    pub rss_kib: u64,
    /// User + system CPU time, in microseconds (the kernel counts in clock ticks: 10 ms).
    pub cpu_us: u64,
}

pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ProcSample {
        rss_kib,
        cpu_us: (utime + stime) * 1_000_000 / hz,
    })
}

/// Busy CPU time of the whole machine (all cores), in microseconds: what everything running
/// here used, this tool, the server and anything else (the machine may be shared).
pub fn machine_busy_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(busy * 1_000_000 / hz)
}

/// The sum over several processes (e.g. both nodes of a distributed setup).
pub fn sample_all(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let mut total = ProcSample::default();
    for &pid in pids {
        let s = sample(pid)?;
        total.rss_kib += s.rss_kib;
        total.cpu_us += s.cpu_us;
    }
    Some(total)
}

/// The `n`-th client source address after `base` (127.0.0.1, .2, …).
pub fn source_address(base: Ipv4Addr, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n as u32))
}

/// Connects to `server`. Towards an IPv4 loopback server the socket is first bound to
/// `source` with `IP_BIND_ADDRESS_NO_PORT`, so the port is picked at `connect` from the full
/// four-tuple, and every source address brings a fresh ~28k ephemeral ports.
pub async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = match server {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => {
            let sock = TcpSocket::new_v4()?;
            let one: libc::c_int = 1;
            // SAFETY: a valid socket fd and a pointer to an int of the size given.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    &one as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            sock.bind(SocketAddr::new(source.into(), 0))?;
            sock.connect(server).await?
        }
        _ => TcpStream::connect(server).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `CLOCK_MONOTONIC` in microseconds: the clock behind `Instant` on Linux, shared by every
/// process on the machine, so a parent and its workers can agree on one epoch.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the struct passed to it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
