//! Abuse limits: bids per user per second (per node), connections (HTTP and WebSocket) per IP
//! and in total.

use governor::{clock::DefaultClock, state::keyed::DefaultKeyedStateStore, Quota, RateLimiter};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;
type IpLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

pub struct Limits {
    bids: KeyedLimiter,
    /// `None` when sign-ins are unlimited.
    sessions: Option<IpLimiter>,
    per_ip: usize,
    total: usize,
    connections: Arc<Mutex<ConnectionCounts>>,
}

#[derive(Default)]
struct ConnectionCounts {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Holds one connection slot; frees it when dropped.
pub struct ConnectionSlot {
    ip: IpAddr,
    counts: Arc<Mutex<ConnectionCounts>>,
}

impl ConnectionSlot {
    /// The client address the slot is held for.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        c.total -= 1;
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
        metrics::gauge!("gavel_connections").set(c.total as f64);
    }
}

impl Limits {
    #[cfg(test)]
    pub fn new(bids_per_second: u32, per_ip: usize, total: usize) -> Self {
        Self::with_sessions(bids_per_second, per_ip, total, 0)
    }

    pub fn with_sessions(
        bids_per_second: u32,
        per_ip: usize,
        total: usize,
        sessions_per_minute: u32,
    ) -> Self {
        let rate = NonZeroU32::new(bids_per_second.max(1)).expect("max(1) is non-zero");
        let burst = NonZeroU32::new(bids_per_second.max(1).saturating_mul(2)).expect("non-zero");
        Limits {
            bids: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            sessions: NonZeroU32::new(sessions_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_ip,
            total,
            connections: Arc::default(),
        }
    }

    /// Whether `user` may place one more bid now.
    pub fn allow_bid(&self, user: &str) -> bool {
        self.bids.check_key(&user.to_string()).is_ok()
    }

    /// Whether `ip` may sign one more guest in now.
    pub fn allow_session(&self, ip: IpAddr) -> bool {
        self.sessions
            .as_ref()
            .is_none_or(|l| l.check_key(&ip).is_ok())
    }

    /// Takes a connection slot for `ip`, or `None` if a limit is reached.
    pub fn connect(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut c = self.connections.lock();
        let mine = c.by_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= self.total || (self.per_ip > 0 && mine >= self.per_ip) {
            return None;
        }
        c.total += 1;
        *c.by_ip.entry(ip).or_default() += 1;
        metrics::gauge!("gavel_connections").set(c.total as f64);
        Some(ConnectionSlot {
            ip,
            counts: self.connections.clone(),
        })
    }

    /// Takes a connection slot for a trusted proxy at `ip`: counted in the total, but not
    /// capped per address (its requests are, by their clients' addresses).
    pub fn connect_proxy(&self, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut c = self.connections.lock();
        if c.total >= self.total {
            return None;
        }
        c.total += 1;
        *c.by_ip.entry(ip).or_default() += 1;
        metrics::gauge!("gavel_connections").set(c.total as f64);
        Some(ConnectionSlot {
            ip,
            counts: self.connections.clone(),
        })
    }

    /// Forgets idle rate-limit keys (the keyed limiter otherwise grows without bound).
    pub fn housekeeping(&self) {
        self.bids.retain_recent();
        self.bids.shrink_to_fit();
        if let Some(s) = &self.sessions {
            s.retain_recent();
            s.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_over_the_bid_rate_is_refused() {
        let l = Limits::new(2, 10, 10);
        let allowed = (0..10).filter(|_| l.allow_bid("u1")).count();
        assert_eq!(allowed, 4, "burst of twice the rate");
        assert!(l.allow_bid("u2"), "other users are not affected");
    }

    #[test]
    fn sign_ins_per_ip_are_capped() {
        let l = Limits::with_sessions(1, 10, 10, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!((0..10).filter(|_| l.allow_session(ip)).count(), 3);
        assert!(l.allow_session("127.0.0.2".parse().unwrap()));
        let unlimited = Limits::new(1, 10, 10);
        assert!((0..1000).all(|_| unlimited.allow_session(ip)));
    }

    #[test]
    fn connections_per_ip_are_capped_and_freed() {
        let l = Limits::new(1, 2, 10);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = l.connect(ip).unwrap();
        let _b = l.connect(ip).unwrap();
        assert!(l.connect(ip).is_none());
        assert!(l.connect("127.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert!(l.connect(ip).is_some());
    }
}
