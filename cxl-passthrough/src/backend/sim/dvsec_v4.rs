//! v4 CXL Device DVSEC virtualization (spec v4 §4.5): the whole DVSEC `[0, length)` is a
//! snapshot of hardware taken at every open; only Control and Control2 are writable
//! (stored, never forwarded); Control2's Initiate Cache WB&I and Initiate CXL Reset are
//! doorbells that self-clear; Status2 reports their outcome and cannot be cleared by
//! the guest. Everything else drops writes.

use super::config_space::HwConfig;
use crate::regs::dvsec::{DvsecControl2, DvsecStatus2, off};

/// What a DVSEC write asks the driver to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Doorbells {
    /// Initiate CXL Reset was written (the driver runs a real CXL reset and stamps
    /// Status2 with [`DvsecV4::reset_done`]).
    pub cxl_reset: bool,
}

/// The v4 DVSEC view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DvsecV4 {
    base: u16,
    bytes: Vec<u8>,
}

impl DvsecV4 {
    /// Snapshots `[base, base + len)` from hardware (open).
    pub fn snapshot(hw: &HwConfig, base: u16, len: u16) -> Self {
        Self {
            base,
            bytes: (0..len).map(|r| hw.byte(base + r)).collect(),
        }
    }

    /// Whether config offset `o` is inside the DVSEC.
    pub fn contains(&self, o: u16) -> bool {
        o >= self.base && usize::from(o - self.base) < self.bytes.len()
    }

    fn get16(&self, rel: u16) -> u16 {
        let b = |i: u16| self.bytes.get(usize::from(i)).copied().unwrap_or(0);
        u16::from_le_bytes([b(rel), b(rel + 1)])
    }

    fn put16(&mut self, rel: u16, v: u16) {
        for (k, byte) in v.to_le_bytes().into_iter().enumerate() {
            if let Some(b) = self.bytes.get_mut(usize::from(rel) + k) {
                *b = byte;
            }
        }
    }

    /// Reads from the snapshot (`o` inside the DVSEC; bytes past it read 0).
    pub fn read(&self, o: u16, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let rel = usize::from(o - self.base) + i;
            *b = self.bytes.get(rel).copied().unwrap_or(0);
        }
    }

    /// Applies a write (`o` inside the DVSEC): bytes landing in Control or Control2 are
    /// stored, the rest dropped; then, if Control2 was written, the doorbells run.
    pub fn write(&mut self, o: u16, data: &[u8]) -> Doorbells {
        let rel = o - self.base;
        let mut control2 = false;
        for (i, &d) in data.iter().enumerate() {
            let at = rel + i as u16;
            let writable = (off::CONTROL..off::CONTROL + 2).contains(&at)
                || (off::CONTROL2..off::CONTROL2 + 2).contains(&at);
            if writable && let Some(b) = self.bytes.get_mut(usize::from(at)) {
                *b = d;
                control2 |= at == off::CONTROL2;
            }
        }
        if !control2 {
            return Doorbells::default();
        }
        let c2 = DvsecControl2::from_bits(self.get16(off::CONTROL2));
        let mut s2 = DvsecStatus2::from_bits(self.get16(off::STATUS2));
        if c2.initiate_cache_wbi() {
            s2 = s2.with_cache_invalid(true);
        }
        self.put16(off::STATUS2, s2.into_bits());
        self.put16(
            off::CONTROL2,
            c2.with_initiate_cache_wbi(false)
                .with_initiate_cxl_reset(false)
                .into_bits(),
        );
        Doorbells {
            cxl_reset: c2.initiate_cxl_reset(),
        }
    }

    /// Stamps Status2 after a guest-initiated CXL reset: complete or error.
    pub fn reset_done(&mut self, ok: bool) {
        let s2 = DvsecStatus2::from_bits(self.get16(off::STATUS2))
            .with_cxl_reset_complete(ok)
            .with_cxl_reset_error(!ok);
        self.put16(off::STATUS2, s2.into_bits());
    }
}
