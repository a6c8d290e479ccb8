//! Emulated CXL host bridge component register block (CHBCR), the 64 KiB MMIO block a
//! CHBS points at.
//!
//! Two forms ([`ChbcrConfig`]):
//!
//! * [`ChbcrConfig::Committed`] (default for passthrough): the cache/mem capability array
//!   lists one HDM Decoder Capability with one decoder; decoder 0 is committed and locked
//!   (Lock On Commit) to exactly the endpoint decoder's HPA range, 1 way, the endpoint's
//!   granularity, Target Type device-coherent, Target List byte 0 = the root port's PCIe
//!   Port Number; HDM Decoder Enable is set. Linux then enumerates an enabled, locked
//!   switch decoder and can auto-assemble the VMM-committed region through the bridge.
//! * [`ChbcrConfig::Passthrough`]: the capability array is present but empty (no HDM
//!   capability). A Linux host-bridge port with exactly one root port then falls back to
//!   its software "passthrough decoder". Use it only when the endpoint decoder is left
//!   for the guest to program (nothing pre-committed) and the bridge has one root port;
//!   region auto-assembly of a pre-committed decoder fails through it.
//!
//! In both forms every register is read-only to the guest: the committed decoder is
//! locked, and HDM Decoder Enable stays set while it is (clearing it would claim to stop
//! decoding a range the VMM keeps mapped). Guest writes are ignored, of any size and
//! alignment; reads of any size and alignment return the little-endian register bytes,
//! zero for reserved space, all-ones past the block.

use thiserror::Error;

use crate::description::{CHBCR_SIZE, Granularity, WINDOW_GRANULE};
use crate::regs::component::{CAP_ID_HDM, CAP_ID_HEADER, CM_OFFSET, CmCapEntry, CmCapHeader};
use crate::regs::hdm::{
    DecoderCtrl, DecoderReg, HdmCapability, HdmField, HdmGlobalControl, hdm_block_size, hdm_field,
    split_lo_hi,
};

/// Offset of the one capability-array entry (the HDM Decoder Capability) in the block.
pub const CAP_SLOT0_OFFSET: u64 = CM_OFFSET + 4;
/// Where this model puts the HDM Decoder Capability structure: the entry's pointer,
/// relative to the CXL.cache/mem area.
pub const HDM_POINTER: u16 = 0x10;
/// Offset of the HDM Decoder Capability structure in the block.
pub const HDM_OFFSET: u64 = CM_OFFSET + HDM_POINTER as u64;

/// A host-bridge HDM decoder committed and locked by the VMM before boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedDecoder {
    /// HPA base: the endpoint decoder's base (inside a CFMWS), 256 MiB aligned.
    pub base: u64,
    /// Size: the endpoint decoder's size, a non-zero multiple of 256 MiB.
    pub size: u64,
    /// Interleave granularity; must equal the endpoint decoder's.
    pub granularity: Granularity,
    /// PCIe Port Number of the root port below the bridge (Target List byte 0).
    pub target_port: u8,
}

/// Which CHBCR form to emulate (see the module documentation for when to use which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChbcrConfig {
    /// HDM Decoder Capability with decoder 0 committed and locked.
    Committed(CommittedDecoder),
    /// No HDM Decoder Capability: Linux uses a passthrough decoder (single root port).
    Passthrough,
}

/// Why a [`ChbcrConfig`] cannot be emulated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChbcrError {
    /// HDM decoder bases have 256 MiB granularity.
    #[error("decoder base {0:#x} is not 256 MiB aligned")]
    BaseAlignment(u64),
    /// HDM decoder sizes have 256 MiB granularity and a committed size must be non-zero.
    #[error("decoder size {0:#x} is zero or not a multiple of 256 MiB")]
    Size(u64),
    /// `base + size` wraps.
    #[error("decoder {base:#x}+{size:#x} wraps around the address space")]
    Wraps {
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
}

/// The emulated CHBCR: [`Chbcr::read`] and [`Chbcr::write`] serve guest accesses, with
/// offsets relative to the CHBS Base. With the `vm-device` feature it also implements
/// rust-vmm vm-device's `MutDeviceMmio`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chbcr {
    config: ChbcrConfig,
    ignored_writes: u64,
}

impl Chbcr {
    /// Size of the block.
    pub const SIZE: u64 = CHBCR_SIZE;

    /// Validates `config` and builds the block.
    pub fn new(config: ChbcrConfig) -> Result<Self, ChbcrError> {
        if let ChbcrConfig::Committed(d) = config {
            if !d.base.is_multiple_of(WINDOW_GRANULE) {
                return Err(ChbcrError::BaseAlignment(d.base));
            }
            if d.size == 0 || !d.size.is_multiple_of(WINDOW_GRANULE) {
                return Err(ChbcrError::Size(d.size));
            }
            if d.base.checked_add(d.size - 1).is_none() {
                return Err(ChbcrError::Wraps {
                    base: d.base,
                    size: d.size,
                });
            }
        }
        Ok(Self {
            config,
            ignored_writes: 0,
        })
    }

    /// The emulated form.
    pub fn config(&self) -> ChbcrConfig {
        self.config
    }

    /// Guest writes ignored so far (all registers are read-only).
    pub fn ignored_writes(&self) -> u64 {
        self.ignored_writes
    }

    /// The value of the dword at `offset` (4-byte aligned, inside the block).
    pub fn read_dword(&self, offset: u64) -> u32 {
        let decoder = match self.config {
            ChbcrConfig::Committed(d) => Some(d),
            ChbcrConfig::Passthrough => None,
        };
        if offset == CM_OFFSET {
            return CmCapHeader::new()
                .with_cap_id(CAP_ID_HEADER)
                .with_version(1)
                .with_cm_version(1)
                .with_array_size(u8::from(decoder.is_some()))
                .into_bits();
        }
        let Some(d) = decoder else { return 0 };
        if offset == CAP_SLOT0_OFFSET {
            return CmCapEntry::new()
                .with_cap_id(CAP_ID_HDM)
                .with_version(1)
                .with_pointer(HDM_POINTER)
                .into_bits();
        }
        let Some(rel) = offset
            .checked_sub(HDM_OFFSET)
            .filter(|r| *r < hdm_block_size(1))
        else {
            return 0;
        };
        let (base_lo, base_hi) = split_lo_hi(d.base);
        let (size_lo, size_hi) = split_lo_hi(d.size);
        match hdm_field(rel) {
            Some(HdmField::Capability) => HdmCapability::new()
                .with_decoder_count_raw(0)
                .with_target_count(1)
                .into_bits(),
            Some(HdmField::GlobalControl) => HdmGlobalControl::new()
                .with_hdm_decoder_enable(true)
                .into_bits(),
            Some(HdmField::Decoder(0, reg)) => match reg {
                DecoderReg::BaseLo => base_lo,
                DecoderReg::BaseHi => base_hi,
                DecoderReg::SizeLo => size_lo,
                DecoderReg::SizeHi => size_hi,
                DecoderReg::Ctrl => DecoderCtrl::new()
                    .with_ig(d.granularity.encoding())
                    .with_iw(0)
                    .with_lock_on_commit(true)
                    .with_commit(true)
                    .with_committed(true)
                    .with_target_type_hostonly(false)
                    .into_bits(),
                DecoderReg::TargetListLo => u32::from(d.target_port),
                DecoderReg::TargetListHi | DecoderReg::Reserved => 0,
            },
            _ => 0,
        }
    }

    /// Reads `data.len()` bytes at `offset` (any size, any alignment).
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i as u64)
                .filter(|o| *o < Self::SIZE)
                .map_or(0xFF, |o| {
                    let shift = 8 * (o % 4);
                    (self.read_dword(o - o % 4) >> shift) as u8
                });
        }
    }

    /// Handles a guest write: every register is read-only, so it is counted and ignored.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        self.ignored_writes = self.ignored_writes.saturating_add(1);
        log::debug!(
            "CHBCR: ignored {}-byte guest write at {offset:#x} (registers are locked/read-only)",
            data.len()
        );
    }
}

#[cfg(feature = "vm-device")]
impl vm_device::MutDeviceMmio for Chbcr {
    fn mmio_read(
        &mut self,
        _base: vm_device::bus::MmioAddress,
        offset: vm_device::bus::MmioAddressOffset,
        data: &mut [u8],
    ) {
        self.read(offset, data);
    }

    fn mmio_write(
        &mut self,
        _base: vm_device::bus::MmioAddress,
        offset: vm_device::bus::MmioAddressOffset,
        data: &[u8],
    ) {
        self.write(offset, data);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
