//! Boot-time programming of the firmware-committed HDM decoder 0.
//!
//! The guest must find decoder 0 committed and locked at the CFMWS window before any
//! vCPU runs. One register sequence is correct under both kernel revisions' shadow rules
//! (spec §5.1 for v2, §7.4 for v3):
//!
//! 1. Read CTRL and SIZE; a decoder that is not COMMITTED is rejected (the kernel only
//!    backs firmware-committed decoders); SIZE must cover the device memory.
//! 2. Write CTRL with LOCK, COMMIT (and the read-only bits) clear. v2: a locked decoder
//!    only loses LOCK (or, unlocked, COMMITTED follows COMMIT = 0); v3: COMMIT = 0
//!    releases COMMITTED and LOCK. Either way BASE becomes writable.
//! 3. Write BASE_LO (bits 27:0 clear) and BASE_HI with the window base.
//! 4. Write CTRL = firmware's IG/IW/type/etc. | COMMIT | LOCK. v2: COMMITTED := COMMIT,
//!    LOCK stored; v3: COMMITTED set.
//! 5. Enable HDM decoding in Global Control.
//! 6. Read everything back: BASE = window, SIZE ≥ device memory, COMMITTED and LOCK set,
//!    ERROR_NOT_COMMITTED clear, HDM Decoder Enable set. Any mismatch is an error.

use thiserror::Error;

use crate::backend::BackendError;
use crate::regs::hdm::{
    DecoderCtrl, DecoderReg, HDM_GLOBAL_CONTROL, HDM_LO_RESERVED_MASK, HdmGlobalControl,
    join_lo_hi, split_lo_hi,
};

/// Dword register access used by the sequence (block offsets).
pub trait DwordIo {
    /// Reads a dword.
    fn read(&self, offset: u64) -> Result<u32, BackendError>;
    /// Writes a dword.
    fn write(&self, offset: u64, value: u32) -> Result<(), BackendError>;
}

impl DwordIo for super::comp_regs::CompRegs {
    fn read(&self, offset: u64) -> Result<u32, BackendError> {
        super::comp_regs::CompRegs::read(self, offset)
    }
    fn write(&self, offset: u64, value: u32) -> Result<(), BackendError> {
        super::comp_regs::CompRegs::write(self, offset, value)
    }
}

/// Decoder 0 as read back after programming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DecoderState {
    /// Base (guest physical).
    pub base: u64,
    /// Size.
    pub size: u64,
    /// COMMITTED bit.
    pub committed: bool,
    /// LOCK (Lock On Commit) bit.
    pub locked: bool,
    /// ERROR_NOT_COMMITTED bit.
    pub error_not_committed: bool,
    /// Target type is device-coherent (Type-2).
    pub device_coherent: bool,
    /// HDM Decoder Enable in Global Control.
    pub hdm_enabled: bool,
    /// Raw CTRL.
    pub ctrl: u32,
    /// DVSEC Control.Mem_Enable after boot (`None`: not read, or no DVSEC).
    pub mem_enabled: Option<bool>,
}

/// Why the boot-time lock failed.
#[derive(Debug, Error)]
pub enum HdmLockError {
    /// A register access failed.
    #[error("HDM register access failed: {0}")]
    Io(#[from] BackendError),
    /// Decoder 0 was not committed by firmware.
    #[error(
        "HDM decoder 0 is not firmware-committed (CTRL {ctrl:#010x}); only firmware-committed devices are \
         supported (guest-programmed mode is not implemented)"
    )]
    NotCommitted {
        /// CTRL as read.
        ctrl: u32,
    },
    /// The window base is not 256 MiB aligned.
    #[error("window base {0:#x} is not 256 MiB aligned")]
    Misaligned(u64),
    /// The decoder is smaller than the device memory to map.
    #[error("HDM decoder 0 size {decoder:#x} is smaller than the device memory {dpa:#x}")]
    TooSmall {
        /// Decoder size.
        decoder: u64,
        /// DPA region size.
        dpa: u64,
    },
    /// Read-back did not show the programmed state.
    #[error("HDM decoder 0 read-back mismatch after locking: {0:?}")]
    Verify(DecoderState),
}

/// Reads decoder 0 (at HDM block offset `hdm`) and Global Control.
pub fn read_decoder0(io: &impl DwordIo, hdm: u64) -> Result<DecoderState, BackendError> {
    let rd = |r: DecoderReg| io.read(hdm + r.at(0));
    let ctrl_raw = rd(DecoderReg::Ctrl)?;
    let ctrl = DecoderCtrl::from_bits(ctrl_raw);
    let gc = HdmGlobalControl::from_bits(io.read(hdm + HDM_GLOBAL_CONTROL)?);
    Ok(DecoderState {
        base: join_lo_hi(rd(DecoderReg::BaseLo)?, rd(DecoderReg::BaseHi)?),
        size: join_lo_hi(rd(DecoderReg::SizeLo)?, rd(DecoderReg::SizeHi)?),
        committed: ctrl.committed(),
        locked: ctrl.lock_on_commit(),
        error_not_committed: ctrl.error_not_committed(),
        device_coherent: !ctrl.target_type_hostonly(),
        hdm_enabled: gc.hdm_decoder_enable(),
        ctrl: ctrl_raw,
        mem_enabled: None,
    })
}

/// Programs decoder 0 at `window_base`, commits and locks it, and verifies by read-back.
pub fn lock_decoder0(
    io: &impl DwordIo,
    hdm: u64,
    window_base: u64,
    dpa_size: u64,
) -> Result<DecoderState, HdmLockError> {
    if window_base & u64::from(HDM_LO_RESERVED_MASK) != 0 {
        return Err(HdmLockError::Misaligned(window_base));
    }
    let reg = |r: DecoderReg| hdm + r.at(0);
    let before = read_decoder0(io, hdm)?;
    if !before.committed {
        return Err(HdmLockError::NotCommitted { ctrl: before.ctrl });
    }
    if before.size < dpa_size {
        return Err(HdmLockError::TooSmall {
            decoder: before.size,
            dpa: dpa_size,
        });
    }
    let fw = DecoderCtrl::from_bits(before.ctrl)
        .with_lock_on_commit(false)
        .with_commit(false)
        .with_committed(false)
        .with_error_not_committed(false);
    let fw_bits = fw.into_bits() & !DecoderCtrl::RESERVED;
    io.write(reg(DecoderReg::Ctrl), fw_bits)?;
    let (lo, hi) = split_lo_hi(window_base);
    io.write(reg(DecoderReg::BaseLo), lo)?;
    io.write(reg(DecoderReg::BaseHi), hi)?;
    let commit = DecoderCtrl::from_bits(fw_bits)
        .with_commit(true)
        .with_lock_on_commit(true);
    io.write(reg(DecoderReg::Ctrl), commit.into_bits())?;
    let gc = HdmGlobalControl::from_bits(io.read(hdm + HDM_GLOBAL_CONTROL)?)
        .with_hdm_decoder_enable(true);
    io.write(hdm + HDM_GLOBAL_CONTROL, gc.into_bits())?;

    let after = read_decoder0(io, hdm)?;
    let ok = after.base == window_base
        && after.size >= dpa_size
        && after.committed
        && after.locked
        && !after.error_not_committed
        && after.hdm_enabled;
    if ok {
        Ok(after)
    } else {
        Err(HdmLockError::Verify(after))
    }
}
