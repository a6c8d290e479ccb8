//! The COMP_REGS overlay: the MMIO handler for the component block inside the BAR.
//!
//! Guest accesses to the 64 KiB component block are trapped and served from the kernel's
//! COMP_REGS shadow, one dword at a time (the only access v2 accepts):
//! - reads of 1, 2, 4 or 8 naturally aligned bytes; anything else reads all-ones;
//! - aligned 4-byte writes, and aligned 8-byte writes as two dword writes (low first);
//!   any other write is dropped;
//! - block offsets below the region (v2's CXL.io part) read 0, offsets beyond it read
//!   all-ones; writes there are dropped. On v4, whose COMP_REGS region is the HDM block
//!   alone, both are forwarded to the BAR region (the capability array the guest walks
//!   lives there), and the HDM block is a userspace view ([`CompRegs::emulated`]);
//! - decoders the VMM locked at boot are protected: guest writes to their registers are
//!   dropped, because neither kernel revision enforces Lock-On-Commit against a guest
//!   (v2 lets a LOCK=0 write unlock, v3 lets COMMIT=0 decommit);
//! - while a decoder is protected, HDM Decoder Global Control keeps HDM Decoder Enable
//!   set: a guest write that clears it is applied with the bit set (the guest's
//!   Poison On Decode Error Enable and the other bits go through as written), because
//!   the locked decoder only decodes while decoding is enabled;
//! - while fenced (reset in progress or failed) reads are all-ones and writes dropped;
//! - backend errors give all-ones / a dropped write and a rate-limited log line.
//!
//! Nothing here panics on any guest input.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use log::warn;

use super::comp_regs::{CompRegs, Slot};
use super::ratelimit::RateLimit;
use crate::backend::BackendError;
use crate::errors::Chain;
use crate::regs::component::COMPONENT_BLOCK_SIZE;
use crate::regs::hdm::{HDM_DECODER_STRIDE, HDM_DECODER0, HDM_GLOBAL_CONTROL, HdmGlobalControl};

/// Counters a VMM can export. Only the slow paths count (successful accesses are
/// counted by the VMM's exit accounting), so the hot path has no atomic read-modify-write.
#[derive(Debug, Default)]
pub struct OverlayStats {
    /// Guest writes dropped (bad size/alignment, outside the region, locked, fenced).
    pub dropped_writes: AtomicU64,
    /// Backend errors.
    pub errors: AtomicU64,
}

/// The overlay for one device.
#[derive(Debug)]
pub struct Overlay {
    regs: CompRegs,
    hdm_offset: u64,
    decoder_count: u32,
    locked: AtomicU32,
    fenced: AtomicBool,
    errors_log: RateLimit,
    drops_log: RateLimit,
    /// Access counters.
    pub stats: OverlayStats,
}

impl Overlay {
    /// Creates the overlay. `hdm_offset` is the HDM block's offset inside the component
    /// block; `decoder_count` its decoder count.
    pub fn new(regs: CompRegs, hdm_offset: u64, decoder_count: u32) -> Self {
        Self {
            regs,
            hdm_offset,
            decoder_count,
            locked: AtomicU32::new(0),
            fenced: AtomicBool::new(false),
            errors_log: RateLimit::new(8, 4096),
            drops_log: RateLimit::new(8, 4096),
            stats: OverlayStats::default(),
        }
    }

    /// Size of the trapped range.
    pub const fn size(&self) -> u64 {
        COMPONENT_BLOCK_SIZE
    }

    /// The COMP_REGS accessor behind this overlay.
    pub fn comp_regs(&self) -> &CompRegs {
        &self.regs
    }

    /// Marks decoder `n` as locked by the VMM (guest writes to it are dropped).
    pub fn protect_decoder(&self, n: u32) {
        if n < 32 {
            self.locked.fetch_or(1 << n, Ordering::SeqCst);
        }
    }

    /// Clears every protection (before a reset re-locks).
    pub fn unprotect_all(&self) {
        self.locked.store(0, Ordering::SeqCst);
    }

    /// Fences or unfences the overlay.
    pub fn set_fenced(&self, fenced: bool) {
        self.fenced.store(fenced, Ordering::SeqCst);
    }

    /// Whether the overlay is fenced.
    #[inline]
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    fn decoder_of(&self, offset: u64) -> Option<u32> {
        let rel = offset.checked_sub(self.hdm_offset + HDM_DECODER0)?;
        let n = u32::try_from(rel / HDM_DECODER_STRIDE).ok()?;
        (n < self.decoder_count).then_some(n)
    }

    #[inline]
    fn read_dword(&self, offset: u64) -> u32 {
        match self.regs.slot(offset) {
            Slot::Below | Slot::Beyond if self.regs.forwards_outside() => {
                let mut b = [0u8; 4];
                match self.regs.read_outside(offset, &mut b) {
                    Ok(()) => u32::from_le_bytes(b),
                    Err(e) => self.read_failed(offset, e),
                }
            }
            Slot::Below => 0,
            Slot::Beyond => u32::MAX,
            Slot::Region(r) => self
                .regs
                .read_region(r)
                .unwrap_or_else(|e| self.read_failed(offset, e)),
        }
    }

    #[cold]
    fn read_failed(&self, offset: u64, e: BackendError) -> u32 {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.errors_log.hit() {
            warn!(
                "cxl overlay: read at {offset:#x} failed ({}); returning all-ones [error #{n}]",
                Chain(&e)
            );
        }
        u32::MAX
    }

    fn drop_write(&self, offset: u64, len: usize, why: &str) {
        self.stats.dropped_writes.fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.drops_log.hit() {
            log::debug!("cxl overlay: dropped {len}-byte write at {offset:#x}: {why} [#{n}]");
        }
    }

    fn write_dword(&self, offset: u64, mut value: u32) {
        if let Some(n) = self.decoder_of(offset)
            && self.locked.load(Ordering::SeqCst) & (1 << n) != 0
        {
            return self.drop_write(offset, 4, "decoder locked");
        }
        if offset == self.hdm_offset + HDM_GLOBAL_CONTROL && self.locked.load(Ordering::SeqCst) != 0
        {
            let gc = HdmGlobalControl::from_bits(value);
            if !gc.hdm_decoder_enable() {
                if let Some(n) = self.drops_log.hit() {
                    log::debug!(
                        "cxl overlay: guest cleared HDM Decoder Enable; kept set (decoder locked) [#{n}]"
                    );
                }
                value = gc.with_hdm_decoder_enable(true).into_bits();
            }
        }
        let result = match self.regs.slot(offset) {
            Slot::Region(r) => self.regs.write_region(r, value),
            _ if self.regs.forwards_outside() => {
                self.regs.write_outside(offset, &value.to_le_bytes())
            }
            _ => return self.drop_write(offset, 4, "outside COMP_REGS"),
        };
        match result {
            Ok(()) => {}
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = self.errors_log.hit() {
                    warn!(
                        "cxl overlay: write at {offset:#x} failed ({}); dropped [error #{n}]",
                        Chain(&e)
                    );
                }
            }
        }
    }

    #[inline]
    /// Handles a guest read of `data.len()` bytes at block offset `offset`.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        // Fast path: the aligned dword access guests make almost exclusively.
        if let Ok(dst) = <&mut [u8; 4]>::try_from(&mut *data)
            && offset & 3 == 0
            && offset < COMPONENT_BLOCK_SIZE
            && !self.is_fenced()
        {
            *dst = self.read_dword(offset).to_le_bytes();
            return;
        }
        let len = data.len() as u64;
        let ok = matches!(len, 1 | 2 | 4 | 8)
            && offset.is_multiple_of(len)
            && offset
                .checked_add(len)
                .is_some_and(|e| e <= COMPONENT_BLOCK_SIZE);
        if !ok || self.is_fenced() {
            data.fill(0xFF);
            return;
        }
        let base = offset & !3;
        let lo = self.read_dword(base);
        let value = if len == 8 {
            u64::from(lo) | u64::from(self.read_dword(base + 4)) << 32
        } else {
            u64::from(lo)
        };
        let shift = (offset - base) * 8;
        let bytes = (value >> shift).to_le_bytes();
        data.copy_from_slice(&bytes[..data.len()]);
    }

    /// Handles a guest write of `data` at block offset `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) {
        if self.is_fenced() {
            return self.drop_write(offset, data.len(), "fenced");
        }
        let aligned = offset.is_multiple_of(data.len().max(1) as u64)
            && offset
                .checked_add(data.len() as u64)
                .is_some_and(|e| e <= COMPONENT_BLOCK_SIZE);
        match (data.len(), aligned) {
            (4, true) => self.write_dword(offset, le_u32(data, 0)),
            (8, true) => {
                self.write_dword(offset, le_u32(data, 0));
                self.write_dword(offset + 4, le_u32(data, 4));
            }
            _ => self.drop_write(offset, data.len(), "unsupported size or alignment"),
        }
    }
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = data.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_le_bytes(b)
}
