//! Boot-time programming of the firmware-committed HDM decoder 0.
//!
//! The guest must find decoder 0 committed and locked at the CFMWS window before any
//! vCPU runs. One register sequence is correct under both kernel revisions' shadow rules
//! (spec §5.1 for v2, §7.4 for v3):
//!
//! 1. Read CTRL, BASE and SIZE. A decoder that is not COMMITTED is rejected (the kernel
//!    only backs firmware-committed decoders) unless this [`DecoderLock`] itself left it
//!    decommitted in an earlier, interrupted attempt (see below); SIZE must cover the
//!    device memory.
//! 2. Write CTRL with LOCK, COMMIT (and the read-only bits) clear. v2: a locked decoder
//!    only loses LOCK (or, unlocked, COMMITTED follows COMMIT = 0); v3: COMMIT = 0
//!    releases COMMITTED and LOCK. Either way BASE and SIZE become writable.
//! 3. Write BASE_LO (bits 27:0 clear) and BASE_HI with the window base, SIZE_LO and
//!    SIZE_HI with the size firmware committed (a no-op unless an interrupted attempt
//!    or a guest changed it).
//! 4. Write CTRL = firmware's IG/IW/type/etc. | COMMIT | LOCK. v2: COMMITTED := COMMIT,
//!    LOCK stored; v3: COMMITTED set.
//! 5. Enable HDM decoding in Global Control.
//! 6. Read everything back: BASE = window, SIZE ≥ device memory, COMMITTED and LOCK set,
//!    ERROR_NOT_COMMITTED clear, HDM Decoder Enable set. Any mismatch is an error.
//!
//! # Failures are recoverable
//!
//! Every register access names its [`LockStep`] in the error. A failure after step 2
//! leaves the decoder decommitted in the kernel's shadow, which on v3 survives reset and
//! reopen. So the lock is made retryable in two ways:
//! - a best-effort rollback writes back the registers read in step 1 (CTRL, BASE, SIZE)
//!   and re-commits, so the shadow is as it was even for a later process;
//! - if the rollback fails too (the fault persists), the [`DecoderLock`] remembers that
//!   *it* decommitted the decoder and what firmware had committed, and the next attempt
//!   accepts the uncommitted decoder and re-commits it with firmware's fields. A reset
//!   that refreshes the kernel's view from hardware (v2) ends that memory
//!   ([`DecoderLock::hardware_refreshed`]): an uncommitted decoder is then hardware's
//!   answer, and rejected as before.

use log::{info, warn};
use thiserror::Error;

use crate::backend::BackendError;
use crate::errors::Chain;
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
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

/// A register access of the lock sequence, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockStep {
    /// Reading decoder 0 (CTRL, BASE, SIZE) and Global Control before programming.
    ReadDecoder,
    /// Writing CTRL with COMMIT and LOCK clear.
    Decommit,
    /// Writing BASE_LO.
    BaseLo,
    /// Writing BASE_HI.
    BaseHi,
    /// Writing SIZE_LO.
    SizeLo,
    /// Writing SIZE_HI.
    SizeHi,
    /// Writing CTRL with COMMIT and LOCK set.
    Commit,
    /// Reading Global Control before enabling decoding.
    ReadGlobalControl,
    /// Writing Global Control with HDM Decoder Enable.
    HdmEnable,
    /// Reading decoder 0 back after programming.
    ReadBack,
}

impl std::fmt::Display for LockStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ReadDecoder => "reading decoder 0",
            Self::Decommit => "decommitting (CTRL write, COMMIT=0 LOCK=0)",
            Self::BaseLo => "writing BASE_LO",
            Self::BaseHi => "writing BASE_HI",
            Self::SizeLo => "writing SIZE_LO",
            Self::SizeHi => "writing SIZE_HI",
            Self::Commit => "committing (CTRL write, COMMIT=1 LOCK=1)",
            Self::ReadGlobalControl => "reading HDM Decoder Global Control",
            Self::HdmEnable => "setting HDM Decoder Enable in Global Control",
            Self::ReadBack => "reading decoder 0 back",
        })
    }
}

/// Why the boot-time lock failed.
#[derive(Debug, Error)]
pub enum HdmLockError {
    /// A register access failed.
    #[error("HDM decoder 0 lock failed at step: {step}")]
    Step {
        /// The access that failed.
        step: LockStep,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
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
    #[error(
        "HDM decoder 0 read back after locking: {problem} (base {:#x}, size {:#x}, CTRL {:#010x}, HDM Decoder \
         Enable {})",
        state.base, state.size, state.ctrl, state.hdm_enabled
    )]
    Verify {
        /// What was read back.
        state: DecoderState,
        /// The first check that failed.
        problem: &'static str,
    },
}

/// The first read-back check that `after` fails, if any.
fn verify(after: &DecoderState, window_base: u64, dpa_size: u64) -> Option<&'static str> {
    if after.base != window_base {
        Some("BASE is not the window base")
    } else if after.size < dpa_size {
        Some("SIZE is smaller than the device memory")
    } else if !after.committed {
        Some("COMMITTED is clear")
    } else if !after.locked {
        Some("LOCK is clear")
    } else if after.error_not_committed {
        Some("ERROR_NOT_COMMITTED is set")
    } else if !after.hdm_enabled {
        Some("HDM Decoder Enable is clear")
    } else {
        None
    }
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

/// Decoder 0's registers as a lock attempt found them before changing anything: what a
/// rollback restores, and whose fields (IG/IW/type, SIZE) the lock commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareDecoder {
    /// CTRL as read.
    pub ctrl: u32,
    /// BASE as read.
    pub base: u64,
    /// SIZE as read.
    pub size: u64,
}

impl FirmwareDecoder {
    /// CTRL with COMMIT, COMMITTED, LOCK and ERROR_NOT_COMMITTED clear (and reserved bits).
    fn fields(&self) -> u32 {
        DecoderCtrl::from_bits(self.ctrl)
            .with_lock_on_commit(false)
            .with_commit(false)
            .with_committed(false)
            .with_error_not_committed(false)
            .into_bits()
            & !DecoderCtrl::RESERVED
    }
}

/// The boot-time lock of decoder 0 for one device, remembering across attempts what it
/// did (see the module docs: a failed attempt never leaves a device that a retry refuses).
#[derive(Debug, Default)]
pub struct DecoderLock {
    /// Set while an attempt has decommitted decoder 0 and not committed it again: the
    /// registers firmware had committed.
    interrupted: Option<FirmwareDecoder>,
}

impl DecoderLock {
    /// A lock with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an earlier attempt left decoder 0 decommitted (and could not roll back).
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.is_some()
    }

    /// The kernel's register view was refreshed from hardware (v2: at reset and open),
    /// so an uncommitted decoder is hardware's answer, not a leftover of ours.
    pub fn hardware_refreshed(&mut self) {
        self.interrupted = None;
    }

    /// Programs decoder 0 at `window_base`, commits and locks it, and verifies by
    /// read-back. On failure the registers are rolled back when possible, and a later
    /// call can always resume (see the module docs).
    pub fn lock(
        &mut self,
        io: &impl DwordIo,
        hdm: u64,
        window_base: u64,
        dpa_size: u64,
    ) -> Result<DecoderState, HdmLockError> {
        if window_base & u64::from(HDM_LO_RESERVED_MASK) != 0 {
            return Err(HdmLockError::Misaligned(window_base));
        }
        let before = read_decoder0(io, hdm).map_err(at(LockStep::ReadDecoder))?;
        let current = FirmwareDecoder {
            ctrl: before.ctrl,
            base: before.base,
            size: before.size,
        };
        let fw = match self.interrupted {
            _ if before.committed => current,
            Some(fw) => {
                info!(
                    "cxl: decoder 0 is decommitted by an earlier interrupted lock; re-committing firmware's \
                     decoder (CTRL {:#010x}, size {:#x})",
                    fw.ctrl, fw.size
                );
                fw
            }
            None => return Err(HdmLockError::NotCommitted { ctrl: before.ctrl }),
        };
        if fw.size < dpa_size {
            return Err(HdmLockError::TooSmall {
                decoder: fw.size,
                dpa: dpa_size,
            });
        }
        // From the first write on, the decoder may be decommitted: remember firmware's
        // decoder until a commit is verified.
        self.interrupted = Some(fw);
        let result = program(io, hdm, fw, window_base, dpa_size);
        match &result {
            Ok(_) => self.interrupted = None,
            Err(e) => {
                // Restore what was there before this attempt (firmware's decoder when
                // that was a leftover of ours: nothing better to restore).
                match rollback(io, hdm, fw, before.locked) {
                    Ok(()) => {
                        warn!(
                            "cxl: HDM decoder 0 lock failed ({}); registers rolled back",
                            Chain(e)
                        );
                        self.interrupted = None;
                    }
                    Err(r) => warn!(
                        "cxl: HDM decoder 0 lock failed ({}) and the rollback failed too ({}); the next \
                         attempt re-commits firmware's decoder",
                        Chain(e),
                        Chain(&r)
                    ),
                }
            }
        }
        result
    }
}

/// The [`HdmLockError::Step`] of a failed access at `step`.
fn at(step: LockStep) -> impl FnOnce(BackendError) -> HdmLockError {
    move |source| HdmLockError::Step { step, source }
}

/// Decommits decoder 0, writes BASE = `base` and SIZE = firmware's size, and commits it
/// with firmware's fields, Lock-On-Commit as `lock` says (steps 2-4).
fn rewrite_decoder0(
    io: &impl DwordIo,
    hdm: u64,
    fw: FirmwareDecoder,
    base: u64,
    lock: bool,
) -> Result<(), HdmLockError> {
    let reg = |r: DecoderReg| hdm + r.at(0);
    let fields = fw.fields();
    io.write(reg(DecoderReg::Ctrl), fields)
        .map_err(at(LockStep::Decommit))?;
    let (lo, hi) = split_lo_hi(base);
    io.write(reg(DecoderReg::BaseLo), lo)
        .map_err(at(LockStep::BaseLo))?;
    io.write(reg(DecoderReg::BaseHi), hi)
        .map_err(at(LockStep::BaseHi))?;
    let (lo, hi) = split_lo_hi(fw.size);
    io.write(reg(DecoderReg::SizeLo), lo)
        .map_err(at(LockStep::SizeLo))?;
    io.write(reg(DecoderReg::SizeHi), hi)
        .map_err(at(LockStep::SizeHi))?;
    let commit = DecoderCtrl::from_bits(fields)
        .with_commit(true)
        .with_lock_on_commit(lock);
    io.write(reg(DecoderReg::Ctrl), commit.into_bits())
        .map_err(at(LockStep::Commit))
}

/// Programs decoder 0 with firmware's fields at `window_base`, locked, enables decoding
/// and verifies by read-back (steps 2-6).
fn program(
    io: &impl DwordIo,
    hdm: u64,
    fw: FirmwareDecoder,
    window_base: u64,
    dpa_size: u64,
) -> Result<DecoderState, HdmLockError> {
    rewrite_decoder0(io, hdm, fw, window_base, true)?;
    let gc = io
        .read(hdm + HDM_GLOBAL_CONTROL)
        .map_err(at(LockStep::ReadGlobalControl))?;
    let gc = HdmGlobalControl::from_bits(gc).with_hdm_decoder_enable(true);
    io.write(hdm + HDM_GLOBAL_CONTROL, gc.into_bits())
        .map_err(at(LockStep::HdmEnable))?;
    let after = read_decoder0(io, hdm).map_err(at(LockStep::ReadBack))?;
    match verify(&after, window_base, dpa_size) {
        None => Ok(after),
        Some(problem) => Err(HdmLockError::Verify {
            state: after,
            problem,
        }),
    }
}

/// Writes `to` back (its BASE and SIZE, committed, LOCK as `locked`) and checks it is
/// committed again.
fn rollback(
    io: &impl DwordIo,
    hdm: u64,
    to: FirmwareDecoder,
    locked: bool,
) -> Result<(), HdmLockError> {
    rewrite_decoder0(io, hdm, to, to.base, locked)?;
    let back = read_decoder0(io, hdm).map_err(at(LockStep::ReadBack))?;
    if back.committed && back.size == to.size {
        Ok(())
    } else {
        Err(HdmLockError::Verify {
            state: back,
            problem: "not committed again by the rollback",
        })
    }
}

/// Programs decoder 0 at `window_base`, commits and locks it, and verifies by read-back:
/// one attempt of a fresh [`DecoderLock`] (no memory of earlier attempts).
pub fn lock_decoder0(
    io: &impl DwordIo,
    hdm: u64,
    window_base: u64,
    dpa_size: u64,
) -> Result<DecoderState, HdmLockError> {
    DecoderLock::new().lock(io, hdm, window_base, dpa_size)
}
