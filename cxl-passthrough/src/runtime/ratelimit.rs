//! A tiny lock-free log rate limiter for hot paths (MMIO exits).

use std::sync::atomic::{AtomicU64, Ordering};

/// Lets the first `burst` events through, then one in every `every`.
#[derive(Debug)]
pub struct RateLimit {
    count: AtomicU64,
    burst: u64,
    every: u64,
}

impl RateLimit {
    /// Creates a limiter.
    pub const fn new(burst: u64, every: u64) -> Self {
        Self {
            count: AtomicU64::new(0),
            burst,
            every,
        }
    }

    /// Records an event; returns `Some(n)` (the event's number) when it should be logged.
    pub fn hit(&self) -> Option<u64> {
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        (n < self.burst || (self.every > 0 && n.is_multiple_of(self.every))).then_some(n)
    }

    /// Events recorded so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sampled() {
        let r = RateLimit::new(3, 100);
        let logged: Vec<_> = (0..250).filter_map(|_| r.hit()).collect();
        assert_eq!(logged, vec![0, 1, 2, 100, 200]);
        assert_eq!(r.count(), 250);
    }
}
