//! A backend wrapper that injects a simulator fault right before its N-th call, so a
//! test can place a fault at every step of a phase.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cxl_passthrough::backend::sim::{Fault, SimDevice};
use cxl_passthrough::backend::{Backend, MmapSource, ResetKind, Result};

/// Counts the calls made through it and injects `fault` into the simulator right before
/// call number `at` (0-based) is forwarded.
pub struct Armed {
    sim: Arc<SimDevice>,
    inner: Arc<dyn Backend>,
    calls: AtomicU64,
    armed: Mutex<Option<(u64, Fault)>>,
}

impl Armed {
    /// Wraps `inner`, which talks to `sim`.
    pub fn new(sim: Arc<SimDevice>, inner: Arc<dyn Backend>) -> Arc<Self> {
        Arc::new(Self {
            sim,
            inner,
            calls: AtomicU64::new(0),
            armed: Mutex::new(None),
        })
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Injects `fault` before call number `self.calls() + n`.
    pub fn arm_in(&self, n: u64, fault: Fault) {
        *self.armed.lock().unwrap() = Some((self.calls() + n, fault));
    }

    /// Disarms and clears every fault in the simulator.
    pub fn clear(&self) {
        *self.armed.lock().unwrap() = None;
        self.sim.clear_faults();
    }

    fn tick(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut armed = self.armed.lock().unwrap();
        if let Some((at, fault)) = *armed
            && at == n
        {
            self.sim.inject(fault);
            *armed = None;
        }
    }
}

impl Backend for Armed {
    fn device_info(&self) -> Result<Vec<u8>> {
        self.tick();
        self.inner.device_info()
    }
    fn region_info(&self, index: u32) -> Result<Vec<u8>> {
        self.tick();
        self.inner.region_info(index)
    }
    fn read(&self, region: u64, off: u64, buf: &mut [u8]) -> Result<usize> {
        self.tick();
        self.inner.read(region, off, buf)
    }
    fn write(&self, region: u64, off: u64, buf: &[u8]) -> Result<usize> {
        self.tick();
        self.inner.write(region, off, buf)
    }
    fn mmap_source(&self, region: u64) -> Result<MmapSource<'_>> {
        self.tick();
        self.inner.mmap_source(region)
    }
    fn reset(&self, kind: ResetKind) -> Result<()> {
        self.tick();
        self.inner.reset(kind)
    }
}
