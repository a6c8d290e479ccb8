//! [`CxlDevice`]: the assembled runtime object a VMM instantiates per device.
//!
//! It owns the plan (window, BAR split), the overlay, and the device's lifecycle:
//! `boot()` locks HDM decoder 0 at the window before any vCPU runs; `reset()` fences the
//! device, lets the VMM take the device memory away from the guest, resets, re-locks and
//! re-verifies, and stays fenced if anything fails.

use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};

use log::{error, info, warn};
use thiserror::Error;
use vm_memory::{FileOffset, MmapRegion};

use super::comp_regs::CompRegs;
use super::desc::DeviceDesc;
use super::hdm_lock::{DecoderLock, DecoderState, HdmLockError, read_decoder0};
use super::overlay::Overlay;
use crate::backend::{Backend, BackendError, ResetKind};
use crate::errors::Chain;
use crate::plan::{BarPlan, BarPlanError, MappedArea, Window, plan_bar};
use crate::regs::dvsec::{DvsecControl, off};
use crate::regs::hdm::{DecoderCtrl, DecoderReg, join_lo_hi};
use crate::regs::pci::{COMMAND, COMMAND_MEMORY};
use crate::uapi::UapiRevision;

/// Why a device cannot be set up or operated.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// Decoder 0 was not committed by firmware.
    #[error(
        "device decoder 0 is not firmware-committed: only firmware-committed CXL Type-2 devices are supported \
         (guest-programmed decoders are not implemented)"
    )]
    NotFirmwareCommitted,
    /// The window is smaller than the device memory.
    #[error("window of {window:#x} bytes cannot hold {dpa:#x} bytes of device memory")]
    WindowTooSmall {
        /// Window size.
        window: u64,
        /// DPA size.
        dpa: u64,
    },
    /// The kernel does not allow mmap of the DPA region (early BOS kernels).
    #[error(
        "the kernel does not advertise mmap on the DPA region (region {0}); device memory cannot be mapped into \
         the guest without VM exits"
    )]
    DpaNotMappable(u32),
    /// The BAR could not be planned.
    #[error("planning the component BAR")]
    Bar(#[from] BarPlanError),
    /// Locking decoder 0 failed.
    #[error("locking HDM decoder 0 at the window")]
    Lock(#[from] HdmLockError),
    /// Device memory cannot be read after the lock (v2 keeps its DPA region inactive
    /// after a failed reset: the guest would fault on every access).
    #[error(
        "device memory is not accessible after locking decoder 0 (the kernel keeps the DPA region inactive, \
         e.g. after a failed reset); a VFIO reset of the device recovers it"
    )]
    DpaInactive(#[source] BackendError),
    /// v4: the live hardware decoder 0 does not back the device memory.
    #[error(
        "the live HDM decoder 0 is not usable (CTRL {ctrl:#010x}, size {size:#x}, device memory {dpa:#x}): v4 \
         requires it committed by the host with exactly the device memory's size"
    )]
    HwDecoder {
        /// Live CTRL.
        ctrl: u32,
        /// Live SIZE.
        size: u64,
        /// HDM memory region size.
        dpa: u64,
    },
    /// v4: reading the live decoder (to seed or check the guest's view) failed.
    #[error("reading the live HDM decoder block through COMP_REGS")]
    HwRead(#[source] BackendError),
    /// v4: setting PCI COMMAND.Memory Space (v4 serves device memory only with it set).
    #[error("setting Memory Space Enable in the PCI COMMAND register")]
    MemorySpace(#[source] BackendError),
    /// Setting DVSEC Control.Mem_Enable after the lock failed.
    #[error("setting Mem_Enable in the CXL Device DVSEC Control register")]
    MemEnable(#[source] BackendError),
    /// A backend operation failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Mapping memory failed.
    #[error("mapping {what}")]
    Map {
        /// What was being mapped.
        what: String,
        /// The error.
        #[source]
        source: vm_memory::mmap::MmapRegionError,
    },
    /// The device is fenced after a failed reset.
    #[error("device is fenced after a failed reset: {0}")]
    Fenced(String),
    /// The VMM's memory hook failed.
    #[error("VMM memory hook `{step}` failed")]
    Hook {
        /// Which hook: `quiesce` or `restore`.
        step: HookStep,
        /// The VMM's error.
        #[source]
        source: HookError,
    },
}

/// Which [`MemoryHooks`] method failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookStep {
    /// [`MemoryHooks::quiesce`].
    Quiesce,
    /// [`MemoryHooks::restore`].
    Restore,
}

impl std::fmt::Display for HookStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Quiesce => "quiesce",
            Self::Restore => "restore",
        })
    }
}

/// A VMM memory hook's failure: wraps the VMM's own error type.
///
/// ```
/// use cxl_passthrough::runtime::HookError;
/// let e = HookError::new(std::io::Error::other("memslot busy"));
/// assert_eq!(std::error::Error::source(&e).map(|s| s.to_string()).as_deref(), Some("memslot busy"));
/// ```
#[derive(Debug, Error)]
#[error("the VMM could not change the device-memory mapping")]
pub struct HookError(#[source] Box<dyn std::error::Error + Send + Sync + 'static>);

impl HookError {
    /// Wraps the VMM's error (any error type, or a message string).
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(source.into())
    }
}

/// Lifecycle state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// Planned, decoder not yet locked.
    Ready,
    /// Decoder 0 locked at the window.
    Locked(DecoderState),
    /// A reset is in progress.
    Resetting,
    /// A reset failed; the guest sees all-ones and its writes are dropped.
    Fenced(String),
}

/// What the VMM does with the device memory around a reset.
pub trait MemoryHooks {
    /// Takes the device memory away from the guest (remove the memslot / stop DMA).
    fn quiesce(&mut self) -> Result<(), HookError>;
    /// Gives it back after a successful reset and re-lock.
    fn restore(&mut self) -> Result<(), HookError>;
}

/// Hooks for VMMs that keep nothing mapped across a reset.
#[derive(Debug, Default)]
pub struct NoHooks;

impl MemoryHooks for NoHooks {
    fn quiesce(&mut self) -> Result<(), HookError> {
        Ok(())
    }
    fn restore(&mut self) -> Result<(), HookError> {
        Ok(())
    }
}

/// One passed-through CXL Type-2 device.
pub struct CxlDevice {
    backend: Arc<dyn Backend>,
    desc: DeviceDesc,
    window: Window,
    bar_plan: BarPlan,
    overlay: Arc<Overlay>,
    state: Mutex<DeviceState>,
    decoder_lock: Mutex<DecoderLock>,
}

impl std::fmt::Debug for CxlDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CxlDevice")
            .field("desc", &self.desc)
            .field("window", &self.window)
            .field("bar_plan", &self.bar_plan)
            .finish()
    }
}

impl CxlDevice {
    /// Plans the device: checks it is supported, splits its component BAR, builds the
    /// overlay. Nothing is written to the device.
    pub fn new(
        backend: Arc<dyn Backend>,
        desc: DeviceDesc,
        window: Window,
        page_size: u64,
    ) -> Result<Self, DeviceError> {
        if !desc.firmware_committed {
            return Err(DeviceError::NotFirmwareCommitted);
        }
        if window.size < desc.dpa.size {
            return Err(DeviceError::WindowTooSmall {
                window: window.size,
                dpa: desc.dpa.size,
            });
        }
        if !desc.dpa.mmap {
            return Err(DeviceError::DpaNotMappable(desc.dpa.index));
        }
        let sparse = if desc.bar.mmap {
            desc.sparse_areas.clone()
        } else {
            Vec::new()
        };
        let bar_plan = plan_bar(
            desc.bar.size,
            desc.component.offset,
            desc.component.size,
            &sparse,
            page_size,
        )?;
        let mut regs = CompRegs::new(
            backend.clone(),
            desc.comp_regs.file_offset,
            desc.comp_regs.size,
            desc.comp_regs_base_in_block,
        );
        if desc.revision == UapiRevision::V4 {
            regs = regs.emulated(desc.bar.file_offset, desc.component.offset);
        }
        let overlay = Arc::new(Overlay::new(
            regs,
            desc.hdm.block_offset,
            desc.hdm.decoder_count,
        ));
        Ok(Self {
            backend,
            desc,
            window,
            bar_plan,
            overlay,
            state: Mutex::new(DeviceState::Ready),
            decoder_lock: Mutex::new(DecoderLock::new()),
        })
    }

    fn state(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device description.
    pub fn desc(&self) -> &DeviceDesc {
        &self.desc
    }

    /// The CFMWS window.
    pub fn window(&self) -> Window {
        self.window
    }

    /// The component-BAR plan.
    pub fn bar_plan(&self) -> &BarPlan {
        &self.bar_plan
    }

    /// The overlay to register for the component block (`bar_gpa + overlay range`).
    pub fn overlay(&self) -> Arc<Overlay> {
        self.overlay.clone()
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Current lifecycle state.
    pub fn current_state(&self) -> DeviceState {
        self.state().clone()
    }

    /// Locks HDM decoder 0 at the window. Call before any vCPU runs.
    ///
    /// A failure names the register step that failed and leaves the device retryable:
    /// once the fault is gone, `boot()` on the same device succeeds (see
    /// [`super::hdm_lock`]). A fenced device (failed reset) is recovered with
    /// [`CxlDevice::reset`], not here.
    pub fn boot(&self) -> Result<DecoderState, DeviceError> {
        let mut st = self.state();
        if let DeviceState::Fenced(why) = &*st {
            return Err(DeviceError::Fenced(why.clone()));
        }
        let decoder = self.lock()?;
        info!(
            "cxl: decoder 0 locked at {:#x}+{:#x} (committed={}, locked={})",
            decoder.base, decoder.size, decoder.committed, decoder.locked
        );
        *st = DeviceState::Locked(decoder);
        Ok(decoder)
    }

    fn lock(&self) -> Result<DecoderState, DeviceError> {
        self.overlay.unprotect_all();
        let regs = self.overlay.comp_regs();
        if regs.is_emulated() {
            // v4: the guest's decoder is ours, seeded from the live one each time.
            self.enable_memory_space()?;
            regs.reload().map_err(DeviceError::HwRead)?;
            self.check_live_decoder()?;
            self.decoder_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .hardware_refreshed();
        }
        let mut d = self
            .decoder_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lock(
                regs,
                self.desc.hdm.block_offset,
                self.window.base,
                self.desc.dpa.size,
            )?;
        self.overlay.protect_decoder(0);
        d.mem_enabled = self.enable_mem()?;
        self.check_dpa_live()?;
        Ok(d)
    }

    /// v4: the live decoder 0 must be committed with exactly the device memory's size
    /// (the kernel maps the region to that decoder's HPA range).
    fn check_live_decoder(&self) -> Result<(), DeviceError> {
        let regs = self.overlay.comp_regs();
        let hdm_in_region = self
            .desc
            .hdm
            .block_offset
            .saturating_sub(self.desc.comp_regs_base_in_block);
        let live = |r: DecoderReg| {
            regs.read_live(hdm_in_region + r.at(0))
                .map_err(DeviceError::HwRead)
        };
        let ctrl = live(DecoderReg::Ctrl)?;
        let size = join_lo_hi(live(DecoderReg::SizeLo)?, live(DecoderReg::SizeHi)?);
        if !DecoderCtrl::from_bits(ctrl).committed() || size != self.desc.dpa.size {
            return Err(DeviceError::HwDecoder {
                ctrl,
                size,
                dpa: self.desc.dpa.size,
            });
        }
        Ok(())
    }

    /// v4: sets PCI COMMAND.Memory Space through the config region; v4 refuses device
    /// memory access (EIO, SIGBUS) while the virtual bit is clear.
    fn enable_memory_space(&self) -> Result<(), DeviceError> {
        let cfg = self.desc.config.file_offset;
        let at = u64::from(COMMAND);
        let mut b = [0u8; 2];
        let n = self
            .backend
            .read(cfg, at, &mut b)
            .map_err(DeviceError::MemorySpace)?;
        let cmd = u16::from_le_bytes(b);
        if n != 2 || cmd & COMMAND_MEMORY != 0 {
            return match n {
                2 => Ok(()),
                n => Err(DeviceError::MemorySpace(BackendError::Short {
                    op: "COMMAND read".into(),
                    done: n,
                    wanted: 2,
                })),
            };
        }
        let n = self
            .backend
            .write(cfg, at, &(cmd | COMMAND_MEMORY).to_le_bytes())
            .map_err(DeviceError::MemorySpace)?;
        if n != 2 {
            return Err(DeviceError::MemorySpace(BackendError::Short {
                op: "COMMAND write".into(),
                done: n,
                wanted: 2,
            }));
        }
        Ok(())
    }

    /// Reads one byte of device memory through the kernel (not the mapping, which
    /// would fault): v2 answers EIO while its DPA region is inactive.
    fn check_dpa_live(&self) -> Result<(), DeviceError> {
        let mut b = [0u8; 1];
        match self.backend.read(self.desc.dpa.file_offset, 0, &mut b) {
            Ok(1) => Ok(()),
            Ok(n) => Err(DeviceError::DpaInactive(BackendError::Short {
                op: "DPA region read".into(),
                done: n,
                wanted: 1,
            })),
            Err(e) => Err(DeviceError::DpaInactive(e)),
        }
    }

    /// Sets DVSEC Control.Mem_Enable as a guest's CXL driver expects after HDM decoding
    /// is enabled, and reads it back. Returns `None` without a visible DVSEC. A firmware
    /// CONFIG_LOCK can keep the bit clear; that is reported, not fatal: the kernel's DPA
    /// region does not depend on the shadow bit.
    fn enable_mem(&self) -> Result<Option<bool>, DeviceError> {
        let Some(dvsec) = self.desc.dvsec else {
            return Ok(None);
        };
        let cfg = self.desc.config.file_offset;
        let at = u64::from(dvsec.offset + off::CONTROL);
        let read = || -> Result<DvsecControl, DeviceError> {
            let mut b = [0u8; 2];
            let n = self
                .backend
                .read(cfg, at, &mut b)
                .map_err(DeviceError::MemEnable)?;
            if n != 2 {
                return Err(DeviceError::MemEnable(BackendError::Short {
                    op: "DVSEC Control read".into(),
                    done: n,
                    wanted: 2,
                }));
            }
            Ok(DvsecControl::from_bits(u16::from_le_bytes(b)))
        };
        let ctl = read()?;
        if !ctl.mem_enable() {
            let n = self
                .backend
                .write(
                    cfg,
                    at,
                    &ctl.with_mem_enable(true).into_bits().to_le_bytes(),
                )
                .map_err(DeviceError::MemEnable)?;
            if n != 2 {
                return Err(DeviceError::MemEnable(BackendError::Short {
                    op: "DVSEC Control write".into(),
                    done: n,
                    wanted: 2,
                }));
            }
        }
        let on = read()?.mem_enable();
        if !on {
            warn!("cxl: DVSEC Mem_Enable stays clear (CONFIG_LOCK set by firmware?)");
        }
        Ok(Some(on))
    }

    /// Reads decoder 0 back through COMP_REGS.
    pub fn decoder0(&self) -> Result<DecoderState, DeviceError> {
        Ok(read_decoder0(
            self.overlay.comp_regs(),
            self.desc.hdm.block_offset,
        )?)
    }

    /// Maps the device memory (for the guest at the window base, and for DMA).
    pub fn map_dpa(&self) -> Result<MmapRegion, DeviceError> {
        self.map(
            "DPA region",
            self.desc.dpa.file_offset,
            0,
            self.desc.dpa.size,
        )
    }

    /// Maps every directly mapped area of the component BAR.
    pub fn map_sparse(&self) -> Result<Vec<(MappedArea, MmapRegion)>, DeviceError> {
        self.bar_plan
            .mapped
            .iter()
            .map(|a| {
                Ok((
                    *a,
                    self.map(
                        "component BAR area",
                        self.desc.bar.file_offset,
                        a.offset,
                        a.size,
                    )?,
                ))
            })
            .collect()
    }

    /// Maps `size` bytes at `offset` inside the region whose file offset is `region_offset`.
    fn map(
        &self,
        what: &str,
        region_offset: u64,
        offset: u64,
        size: u64,
    ) -> Result<MmapRegion, DeviceError> {
        let src = self.backend.mmap_source(region_offset)?;
        let file_offset = src
            .offset
            .checked_add(offset)
            .ok_or_else(|| BackendError::Invalid(format!("{what}: file offset overflows")))?;
        let fd = src.fd.try_clone_to_owned().map_err(|e| BackendError::Io {
            op: "dup device fd".into(),
            source: e,
        })?;
        let size = usize::try_from(size)
            .map_err(|_| BackendError::Invalid(format!("{what}: size too large")))?;
        MmapRegion::from_file(FileOffset::new(File::from(fd), file_offset), size).map_err(
            |source| DeviceError::Map {
                what: what.into(),
                source,
            },
        )
    }

    /// Resets the device and re-locks decoder 0.
    ///
    /// The overlay is fenced and `hooks.quiesce()` runs before the reset (the DPA mapping
    /// is not used while resetting). On success the decoder is locked again and verified,
    /// the fence lifted and `hooks.restore()` called. On failure the device stays fenced,
    /// the memory stays quiesced and the error is returned.
    pub fn reset(
        &self,
        kind: ResetKind,
        hooks: &mut dyn MemoryHooks,
    ) -> Result<DecoderState, DeviceError> {
        self.fenced_transition(hooks, |hooks| {
            hooks.quiesce().map_err(|source| DeviceError::Hook {
                step: HookStep::Quiesce,
                source,
            })?;
            self.backend.reset(kind)?;
            self.hardware_refreshed();
            Ok(())
        })
    }

    /// Re-locks decoder 0 after a reset the guest triggered itself (FLR or CXL reset
    /// written to config space and performed by the kernel). Same failure rules as
    /// [`CxlDevice::reset`].
    pub fn relock_after_guest_reset(
        &self,
        hooks: &mut dyn MemoryHooks,
    ) -> Result<DecoderState, DeviceError> {
        self.fenced_transition(hooks, |_| {
            self.hardware_refreshed();
            Ok(())
        })
    }

    /// After a reset the kernel performed: v2 refreshes its HDM shadow from hardware,
    /// so the decoder lock's memory of an interrupted attempt no longer applies; v4's
    /// guest view is re-seeded from the live registers at every lock. v3's shadow
    /// survives resets, and with it the decommit an interrupted attempt left.
    fn hardware_refreshed(&self) {
        if matches!(self.desc.revision, UapiRevision::V2 | UapiRevision::V4) {
            self.decoder_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .hardware_refreshed();
        }
    }

    /// Runs `step` with the overlay fenced, then re-locks and restores; settles the state.
    fn fenced_transition(
        &self,
        hooks: &mut dyn MemoryHooks,
        step: impl FnOnce(&mut dyn MemoryHooks) -> Result<(), DeviceError>,
    ) -> Result<DecoderState, DeviceError> {
        let mut st = self.state();
        *st = DeviceState::Resetting;
        self.overlay.set_fenced(true);
        let result = step(&mut *hooks).and_then(|()| {
            let d = self.lock()?;
            hooks.restore().map_err(|source| DeviceError::Hook {
                step: HookStep::Restore,
                source,
            })?;
            Ok(d)
        });
        match result {
            Ok(d) => {
                self.overlay.set_fenced(false);
                *st = DeviceState::Locked(d);
                info!("cxl: reset done, decoder 0 re-locked at {:#x}", d.base);
                Ok(d)
            }
            Err(e) => {
                let why = Chain(&e).to_string();
                error!("cxl: reset failed, device stays fenced: {why}");
                *st = DeviceState::Fenced(why);
                Err(e)
            }
        }
    }
}
