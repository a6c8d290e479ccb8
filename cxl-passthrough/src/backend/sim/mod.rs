//! A userspace model of the kernel's vfio-pci CXL Type-2 driver, v2, v3 or v4.
//!
//! [`SimDevice`] answers the ioctls and file operations a VFIO device fd would
//! ([`SimDevice::ioctl_device_info`], [`SimDevice::ioctl_region_info`],
//! [`SimDevice::pread`], [`SimDevice::pwrite`], [`SimDevice::ioctl_reset`]) with the rules
//! of `shared/spec/kernel-vfio-cxl-uapi.md` §4–§7, over a modelled device ("hardware":
//! PCI config space with the CXL DVSECs, a component register block with HDM decoders,
//! BAR registers and device memory). mmap-able regions live in one memfd at their region
//! file offsets so that mapping the "device fd" works for real. See `docs/simulator.md`.

mod comp_regs_v2;
mod comp_regs_v3;
mod comp_regs_v4;
mod component;
mod config;
mod config_override;
mod config_rw;
mod config_space;
mod dpa;
mod dvsec_v2;
mod dvsec_v3;
mod dvsec_v4;
mod faults;
mod hdm;
mod layout;
mod regions;
mod reset;
mod rw;
mod snapshot;
mod v4;

use crate::uapi::UapiRevision;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

pub use crate::sys::memfd::{Mapping, Prot};
pub use config::{BarLayout, Errno, OffsetLayout, SimConfig, SimError};
pub use config_override::ConfigOverride;
pub use faults::{CapChainFault, Fault, InfoTarget, Op, Stats};
pub use hdm::HdmRegs;
pub use layout::{AUX_BAR_SIZE, DEVICE_DVSEC, REGLOC_DVSEC};
pub use snapshot::SimSnapshot;

use self::comp_regs_v2::V2Comp;
use self::comp_regs_v3::V3Comp;
use self::component::HwComponent;
use self::config_space::HwConfig;
use self::dpa::DpaState;
use self::dvsec_v2::DvsecV2;
use self::dvsec_v3::DvsecV3;
use self::dvsec_v4::DvsecV4;
use self::faults::FaultSet;
use self::layout::Layout;
use self::snapshot::MemTrack;
use super::{Backend, BackendError, MmapSource, ResetKind};
use crate::regs::dvsec::off::LENGTH_REV2;
use crate::sys::memfd::Memfd;
use crate::uapi::wire::{DEVICE_INFO_SIZE, REGION_INFO_SIZE};

/// PCI class (class, subclass) of CXL memory expanders, which v2 refuses.
const CLASS_MEMORY_CXL: u32 = 0x0502;

/// The CXL personality of the driver, per revision.
#[derive(Clone, Debug)]
enum CxlState {
    V2 {
        comp: V2Comp,
        dvsec: DvsecV2,
    },
    V3 {
        comp: V3Comp,
        dvsec: DvsecV3,
    },
    /// v4: COMP_REGS is the live hardware block (no shadow); `hdm_valid` is the
    /// kernel's HDM gate (open after a successful open or CXL reset).
    V4 {
        dvsec: DvsecV4,
        hdm_valid: bool,
    },
}

/// Everything behind the lock.
#[derive(Clone, Debug)]
struct State {
    hw_cfg: HwConfig,
    hw_comp: HwComponent,
    cxl: Option<CxlState>,
    open: bool,
    dpa: DpaState,
    faults: FaultSet,
    stats: Stats,
    /// Changes of the memfd contents, for [`SimDevice::restore`] (kept across a restore).
    mem_track: MemTrack,
}

/// A simulated CXL Type-2 device bound to a simulated vfio-pci CXL driver.
#[derive(Debug)]
pub struct SimDevice {
    cfg: SimConfig,
    layout: Layout,
    mem: Memfd,
    state: Mutex<State>,
    /// Process-unique id, so a snapshot is only restored onto its own device.
    id: u64,
    /// Set once the memfd was handed out ([`SimDevice::device_fd`]): writes through it
    /// or a mapping of it are invisible to [`MemTrack`], so restores rewrite the file.
    fd_shared: AtomicBool,
}

impl SimConfig {
    /// Bytes of host memory a device created with this configuration can use: the sizes
    /// of its memfd-backed regions (BARs, config space, COMP_REGS shadow and the whole
    /// device memory, each rounded up to pages; the file offsets between them are
    /// holes). Device memory fills as it is written. Fails like [`SimDevice::new`] on an
    /// invalid configuration.
    pub fn memory_bytes(&self) -> Result<u64, SimError> {
        self.validate()?;
        Ok(Layout::new(self, true)
            .regions
            .iter()
            .map(|r| {
                r.size
                    .checked_next_multiple_of(layout::PAGE)
                    .unwrap_or(u64::MAX)
            })
            .fold(0, u64::saturating_add))
    }
}

impl SimDevice {
    /// Binds a device described by `cfg` and opens it once (like the first open of
    /// the VFIO device fd).
    pub fn new(cfg: SimConfig) -> Result<SimDevice, SimError> {
        cfg.validate()?;
        let cxl = Self::probe(&cfg)?;
        let layout = Layout::new(&cfg, cxl);
        let mem = Memfd::create("cxl-sim")?;
        mem.set_len(layout.file_len())?;
        Self::fill_bars(&mem, &layout)?;
        let hw_cfg = HwConfig::new(&cfg, &layout);
        let hw_comp = HwComponent::new(&cfg);
        let cxl_state = cxl.then(|| match cfg.revision {
            UapiRevision::V2 => CxlState::V2 {
                comp: V2Comp {
                    prefix: hw_comp.cm_prefix.clone(),
                    hdm: hw_comp.hdm.clone(),
                    cache_capable: cfg.cache_capable,
                },
                dvsec: DvsecV2::seed(&hw_cfg, DEVICE_DVSEC, LENGTH_REV2),
            },
            UapiRevision::V3 => CxlState::V3 {
                comp: V3Comp {
                    cm: hw_comp.cm_prefix.clone(),
                    hdm: hw_comp.hdm.clone(),
                },
                dvsec: DvsecV3::snapshot(&hw_cfg, DEVICE_DVSEC, LENGTH_REV2),
            },
            UapiRevision::V4 => CxlState::V4 {
                dvsec: DvsecV4::snapshot(&hw_cfg, DEVICE_DVSEC, LENGTH_REV2),
                hdm_valid: false,
            },
        });
        let dev = SimDevice {
            cfg,
            layout,
            mem,
            state: Mutex::new(State {
                hw_cfg,
                hw_comp,
                cxl: cxl_state,
                open: false,
                dpa: DpaState::default(),
                faults: FaultSet::default(),
                stats: Stats::default(),
                mem_track: MemTrack::default(),
            }),
            id: snapshot::next_id(),
            fd_shared: AtomicBool::new(false),
        };
        dev.open()
            .map_err(|e| SimError::Io(std::io::Error::from_raw_os_error(e.0)))?;
        Ok(dev)
    }

    /// Bind-time detection: `Ok(true)` for the CXL personality, `Ok(false)` for plain
    /// vfio-pci, `Err` when v3's fail-closed bind aborts.
    fn probe(cfg: &SimConfig) -> Result<bool, SimError> {
        if cfg.disable_cxl {
            return Ok(false);
        }
        match cfg.revision {
            UapiRevision::V4 => Ok(Self::v4_binds(cfg)),
            UapiRevision::V2 => {
                Ok(cfg.firmware_committed && cfg.class_code >> 8 != CLASS_MEMORY_CXL)
            }
            UapiRevision::V3 => {
                if cfg.decoder_count != 1 {
                    return Err(SimError::BindFailed {
                        errno: libc::EOPNOTSUPP,
                        reason: "v3 supports exactly one HDM decoder".into(),
                    });
                }
                if !cfg.firmware_committed {
                    return Err(SimError::BindFailed {
                        errno: libc::ENXIO,
                        reason: "v3 requires a firmware-committed decoder".into(),
                    });
                }
                Ok(true)
            }
        }
    }

    /// Seeds the BAR "device registers": the first dword of every 4 KiB page outside
    /// the component block reads `0xBA00_0000 | bar << 16 | page`.
    fn fill_bars(mem: &Memfd, layout: &Layout) -> std::io::Result<()> {
        for r in &layout.regions {
            let layout::RegionKind::Bar(b) = r.kind else {
                continue;
            };
            for page in 0..r.size / layout::PAGE {
                let o = page * layout::PAGE;
                if b == layout.comp_bar && (layout.comp_off..layout.comp_end()).contains(&o) {
                    continue;
                }
                let v = Self::bar_marker(b, o);
                mem.write_full(&v.to_le_bytes(), r.offset + o)?;
            }
        }
        Ok(())
    }

    /// The marker value the simulator puts at BAR `bar` offset `page_off` (page aligned).
    pub fn bar_marker(bar: u8, page_off: u64) -> u32 {
        0xBA00_0000 | u32::from(bar) << 16 | ((page_off / layout::PAGE) as u32 & 0xFFFF)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the model half-updated in a way
        // that matters more than losing the device; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration this device was built from.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Whether the CXL personality is active (else the device is plain vfio-pci).
    pub fn is_cxl(&self) -> bool {
        self.layout.cxl
    }

    /// Models `open()` of the device fd: function reset (if configured), then for v2 the
    /// HDM and DVSEC shadows are refreshed from hardware and the DPA region (re)armed.
    pub fn open(&self) -> Result<(), Errno> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.open {
            return Err(Errno(libc::EBUSY));
        }
        if matches!(st.cxl, Some(CxlState::V4 { .. })) {
            // v4: a CXL reset replaces the FLR; any error fails the open.
            self.v4_open(st)?;
            st.open = true;
            return Ok(());
        }
        if self.cfg.reset_on_open {
            st.stats.hw_resets += 1;
            st.hw_comp.reset(self.cfg.post_reset_hw_committed);
        }
        if let Some(CxlState::V2 { comp, dvsec }) = &mut st.cxl {
            comp.refresh(&st.hw_comp.hdm);
            *dvsec = DvsecV2::seed(&st.hw_cfg, DEVICE_DVSEC, LENGTH_REV2);
        }
        self.rearm_dpa(st)?;
        st.open = true;
        Ok(())
    }

    /// Models the last `close()` of the device fd. Every operation fails with `ENODEV`
    /// until [`SimDevice::open`]. v3 shadows survive; v2 shadows are rebuilt at open.
    pub fn close(&self) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.open && matches!(st.cxl, Some(CxlState::V4 { .. })) {
            self.v4_close(st);
        }
        st.open = false;
    }

    /// Adds a fault.
    pub fn inject(&self, f: Fault) {
        self.lock().faults.add(f);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Operation counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    /// Hardware decoder `n` registers `[BASE_LO, BASE_HI, SIZE_LO, SIZE_HI, CTRL, TL_LO,
    /// TL_HI, rsvd]` (`None` when `n` ≥ count).
    pub fn hw_decoder(&self, n: u32) -> Option<[u32; 8]> {
        self.lock().hw_comp.hdm.decoders.get(n as usize).copied()
    }

    /// The hardware HDM block.
    pub fn hw_hdm(&self) -> HdmRegs {
        self.lock().hw_comp.hdm.clone()
    }

    /// The COMP_REGS shadow dword at region offset `off` (CM-relative for v2, block-
    /// relative for v3), bypassing the access rules. `None` without CXL personality.
    /// v4 has no shadow: the live hardware HDM block (offset HDM-relative).
    pub fn shadow_dword(&self, off: u64) -> Option<u32> {
        let st = self.lock();
        match &st.cxl {
            Some(CxlState::V2 { comp, .. }) => Some(comp.dword(off)),
            Some(CxlState::V3 { comp, .. }) => Some(comp.dword(off)),
            Some(CxlState::V4 { .. }) => Some(st.hw_comp.hdm.read(off)),
            None => None,
        }
    }

    /// Raw hardware config space bytes at `off` (what the device holds, not what the
    /// driver shows).
    pub fn hw_config_read(&self, off: u16, buf: &mut [u8]) {
        self.lock().hw_cfg.read(off, buf);
    }

    /// Whether the v2 DPA region is active (always true for v3 with CXL; v4: the HDM
    /// gate is open and Memory Space enabled).
    pub fn dpa_active(&self) -> bool {
        let st = self.lock();
        match st.cxl {
            Some(CxlState::V2 { .. }) | Some(CxlState::V4 { .. }) => st.dpa.active,
            Some(CxlState::V3 { .. }) => true,
            None => false,
        }
    }

    /// Whether the DPA pages are currently cut off the backing file (mappings SIGBUS).
    pub fn dpa_zapped(&self) -> bool {
        self.lock().dpa.zapped()
    }

    /// Reads device memory at DPA offset `off`, bypassing the VFIO rules.
    pub fn dpa_host_read(&self, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let st = self.lock();
        self.check_dpa_range(off, buf.len())?;
        st.dpa
            .host_read(&self.mem, self.layout.dpa_file_off, off, buf)
    }

    /// Writes device memory at DPA offset `off`, bypassing the VFIO rules.
    pub fn dpa_host_write(&self, off: u64, data: &[u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        self.check_dpa_range(off, data.len())?;
        st.mem_track.written();
        st.dpa
            .host_write(&self.mem, self.layout.dpa_file_off, off, data)
    }

    fn check_dpa_range(&self, off: u64, len: usize) -> Result<(), Errno> {
        match off.checked_add(len as u64) {
            Some(end) if end <= self.layout.dpa_size => Ok(()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The file offset of region `index` (what region info reports).
    pub fn region_offset(&self, index: u32) -> Option<u64> {
        self.layout.region(index).map(|r| r.offset)
    }

    /// The backing file (the "device fd"). Once handed out, writes through it or a
    /// mapping of it are out of the simulator's sight, so every later
    /// [`SimDevice::restore`] rewrites the file.
    pub fn device_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd_shared.store(true, Ordering::Relaxed);
        self.mem.as_fd()
    }
}

impl Backend for SimDevice {
    fn device_info(&self) -> super::Result<Vec<u8>> {
        super::query_grow(
            "VFIO_DEVICE_GET_INFO",
            DEVICE_INFO_SIZE,
            |_| {},
            |b| {
                self.ioctl_device_info(b)
                    .map_err(|e| BackendError::errno("VFIO_DEVICE_GET_INFO", e.0))
            },
        )
    }

    fn region_info(&self, index: u32) -> super::Result<Vec<u8>> {
        let op = format!("VFIO_DEVICE_GET_REGION_INFO({index})");
        super::query_grow(
            &op,
            REGION_INFO_SIZE,
            |b| b[8..12].copy_from_slice(&index.to_le_bytes()),
            |b| {
                self.ioctl_region_info(b)
                    .map_err(|e| BackendError::errno(&op, e.0))
            },
        )
    }

    fn read(&self, region_offset: u64, offset: u64, buf: &mut [u8]) -> super::Result<usize> {
        let at = region_offset
            .checked_add(offset)
            .ok_or_else(|| BackendError::errno("pread", libc::EOVERFLOW))?;
        self.pread(at, buf)
            .map_err(|e| BackendError::errno(format!("pread at {at:#x}"), e.0))
    }

    fn write(&self, region_offset: u64, offset: u64, buf: &[u8]) -> super::Result<usize> {
        let at = region_offset
            .checked_add(offset)
            .ok_or_else(|| BackendError::errno("pwrite", libc::EOVERFLOW))?;
        self.pwrite(at, buf)
            .map_err(|e| BackendError::errno(format!("pwrite at {at:#x}"), e.0))
    }

    fn mmap_source(&self, region_offset: u64) -> super::Result<MmapSource<'_>> {
        self.mmap_check_source(region_offset)
            .map_err(|e| BackendError::errno(format!("mmap source {region_offset:#x}"), e.0))?;
        Ok(MmapSource {
            fd: self.device_fd(),
            offset: region_offset,
        })
    }

    fn reset(&self, kind: ResetKind) -> super::Result<()> {
        match kind {
            ResetKind::Device => self
                .ioctl_reset()
                .map_err(|e| BackendError::errno("VFIO_DEVICE_RESET", e.0)),
        }
    }
}
