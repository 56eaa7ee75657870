//! Global and per-client-address connection counts. A [`ConnGuard`] holds one slot and frees it
//! when dropped, however the session ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Shared by every listener of the server.
#[derive(Debug, Default)]
pub struct ConnLimiter {
    counts: Mutex<Counts>,
}

/// Which limit refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHit {
    Total,
    PerIp,
}

impl ConnLimiter {
    pub fn new() -> Arc<Self> {
        Arc::new(ConnLimiter::default())
    }

    /// Takes a slot for `ip` unless a limit is reached (limits are read per call, so a reload
    /// applies to the next connection).
    pub fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<ConnGuard, LimitHit> {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= max_total {
            return Err(LimitHit::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err(LimitHit::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnGuard {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Sessions open now.
    pub fn active(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}

#[derive(Debug)]
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_release() {
        let l = ConnLimiter::new();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let g1 = l.try_acquire(a, 3, 2).unwrap();
        let _g2 = l.try_acquire(a, 3, 2).unwrap();
        assert_eq!(l.try_acquire(a, 3, 2).unwrap_err(), LimitHit::PerIp);
        let _g3 = l.try_acquire(b, 3, 2).unwrap();
        assert_eq!(l.try_acquire(b, 3, 2).unwrap_err(), LimitHit::Total);
        drop(g1);
        assert_eq!(l.active(), 2);
        assert!(l.try_acquire(a, 3, 2).is_ok());
    }
}
