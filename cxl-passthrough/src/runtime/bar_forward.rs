//! MMIO handler for the parts of the component BAR that are neither directly mapped nor
//! the overlay (unaligned sparse-area edges, areas the kernel did not advertise):
//! trapped accesses are forwarded to the BAR region with pread/pwrite.

use std::sync::Arc;

use log::warn;

use super::ratelimit::RateLimit;
use crate::backend::Backend;
use crate::errors::Chain;
use crate::plan::BarPlan;
use crate::plan::bar::BarTarget;

/// Forwards trapped BAR accesses to the kernel's BAR region.
pub struct BarForward {
    backend: Arc<dyn Backend>,
    bar_file_offset: u64,
    plan: BarPlan,
    errors: RateLimit,
}

impl std::fmt::Debug for BarForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarForward")
            .field("bar_file_offset", &self.bar_file_offset)
            .finish()
    }
}

impl BarForward {
    /// Creates the handler for a BAR at `bar_file_offset` planned as `plan`. Register a
    /// [`ForwardedRange`] for each range of `plan.forwarded`.
    pub fn new(backend: Arc<dyn Backend>, bar_file_offset: u64, plan: BarPlan) -> Self {
        Self {
            backend,
            bar_file_offset,
            plan,
            errors: RateLimit::new(8, 4096),
        }
    }

    fn allowed(&self, offset: u64, len: usize) -> bool {
        let Some(last) = offset
            .checked_add(len as u64)
            .and_then(|e| e.checked_sub(1))
        else {
            return false;
        };
        matches!(len, 1 | 2 | 4 | 8)
            && matches!(self.plan.target(offset), BarTarget::Forwarded(_))
            && matches!(self.plan.target(last), BarTarget::Forwarded(_))
    }

    /// Reads `data.len()` bytes at BAR offset `offset` (all-ones outside forwarded ranges
    /// or on error).
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        if !self.allowed(offset, data.len()) {
            data.fill(0xFF);
            return;
        }
        match self.backend.read(self.bar_file_offset, offset, data) {
            Ok(n) if n == data.len() => {}
            r => {
                data.fill(0xFF);
                if let Some(n) = self.errors.hit() {
                    warn!("cxl: BAR read at {offset:#x} failed: {r:?} [#{n}]");
                }
            }
        }
    }

    /// Writes `data` at BAR offset `offset` (dropped outside forwarded ranges).
    pub fn write(&self, offset: u64, data: &[u8]) {
        if !self.allowed(offset, data.len()) {
            return;
        }
        if let Err(e) = self.backend.write(self.bar_file_offset, offset, data)
            && let Some(n) = self.errors.hit()
        {
            warn!("cxl: BAR write at {offset:#x} failed: {} [#{n}]", Chain(&e));
        }
    }
}

/// One forwarded range as an MMIO device: the VMM's bus passes offsets relative to the
/// registered range, so each range adds its own start to reach the BAR offset.
#[derive(Debug, Clone)]
pub struct ForwardedRange {
    fwd: Arc<BarForward>,
    start: u64,
}

impl ForwardedRange {
    /// The handler for the forwarded range starting at BAR offset `start`.
    pub fn new(fwd: Arc<BarForward>, start: u64) -> Self {
        Self { fwd, start }
    }

    /// Reads `data.len()` bytes at `offset` from the range's start (all-ones where
    /// nothing is forwarded).
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        match self.start.checked_add(offset) {
            Some(o) => self.fwd.read(o, data),
            None => data.fill(0xFF),
        }
    }

    /// Writes `data` at `offset` from the range's start (dropped where nothing is
    /// forwarded).
    pub fn write(&self, offset: u64, data: &[u8]) {
        if let Some(o) = self.start.checked_add(offset) {
            self.fwd.write(o, data);
        }
    }
}
