//! Emulated CXL root port (guest topology C of `shared/spec/guest-topology.md`).
//!
//! One [`CxlRootPort`] sits on the root bus of the CXL host bridge; the passed-through
//! device is on its secondary bus. The guest sees:
//! - a type-1 header with pre-assigned bus numbers and memory windows covering the
//!   device's BARs, and one 64-bit BAR holding the port's component block;
//! - a PCI Express capability of type Root Port whose Link Capabilities Port Number is
//!   the dport id the host-bridge decoder targets;
//! - the Flex Bus Port, CXL Extensions for Ports, GPF for Ports and Register Locator
//!   DVSECs ([`dvsec`]);
//! - a component block with a capability array and a RAS capability ([`component`]).
//!
//! Host-owned registers ignore guest writes; configuration accesses of any size,
//! alignment and offset are safe. `docs/topology.md` lists every value and why.

pub mod component;
pub mod config;
pub mod dvsec;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use thiserror::Error;

/// The Flex Bus Port DVSEC register type (defined in `regs::port_dvsec`), which
/// [`RootPortConfig`] takes.
pub use crate::regs::port_dvsec::FlexBusBits;
pub use config::{AddrRange, BridgeWindows, LinkParams};

use crate::regs::bridge::{BAR1, BRIDGE_CONTROL, BRIDGE_CONTROL_SBR};
use crate::regs::component::COMPONENT_BLOCK_SIZE;
use crate::regs::pci::{BAR0, COMMAND, COMMAND_MEMORY};
use crate::regs::port_dvsec::port_ext;
use config::{BAR_LO_WRITABLE, ConfigSpace, HeaderParams, WINDOW_GRANULE};

/// First address above the 32-bit space.
const FOUR_GIB: u64 = 1 << 32;
/// Highest PCIe link speed encoding (64 GT/s).
const MAX_LINK_SPEED: u8 = 6;
/// Link widths PCIe defines.
const LINK_WIDTHS: [u8; 7] = [1, 2, 4, 8, 12, 16, 32];

/// One memory BAR of the device below the port, at its guest address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceBar {
    /// Guest physical base.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Prefetchable BAR (goes into the prefetchable window).
    pub prefetchable: bool,
}

/// Everything the VMM decides about a root port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootPortConfig {
    /// PCI Vendor ID of the port (the VMM's own; see `docs/topology.md`).
    pub vendor_id: u16,
    /// PCI Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision: u8,
    /// The host bridge's root bus number (the port's primary bus).
    pub primary_bus: u8,
    /// The device's bus (secondary = subordinate); must be above `primary_bus`.
    pub secondary_bus: u8,
    /// PCIe Port Number, unique below the host bridge (host-bridge decoder target).
    pub port_number: u8,
    /// Guest address of the port's 64 KiB component block (BAR 0, 64 KiB aligned).
    pub component_bar: u64,
    /// The device's memory BARs; the bridge windows are computed to cover them.
    pub device_bars: Vec<DeviceBar>,
    /// Link speed and width to report.
    pub link: LinkParams,
    /// The device's own Flex Bus Port Status (what its link negotiated).
    pub device_flex_bus: FlexBusBits,
}

/// Why a root port cannot be built from a [`RootPortConfig`].
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RootPortError {
    /// The secondary bus must be above the primary bus.
    #[error("secondary bus {secondary} is not above primary bus {primary}")]
    BusNumbers {
        /// Primary bus.
        primary: u8,
        /// Secondary bus.
        secondary: u8,
    },
    /// Unknown link speed or width.
    #[error("link speed {speed} / width x{width} is not a PCIe link")]
    Link {
        /// Speed encoding.
        speed: u8,
        /// Width.
        width: u8,
    },
    /// The component BAR is zero, not 64 KiB aligned or wraps.
    #[error("component BAR address {0:#x} is zero, not 64 KiB aligned or wraps")]
    ComponentBar(u64),
    /// A device BAR is empty or wraps.
    #[error("device BAR {base:#x}+{size:#x} is empty or wraps")]
    DeviceBar {
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// A non-prefetchable BAR cannot be routed by a bridge above 4 GiB (the
    /// non-prefetchable window is 32-bit); the guest would move or disable it.
    #[error("non-prefetchable device BAR {base:#x}+{size:#x} is not below 4 GiB")]
    NonPrefetchableAbove4G {
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// The non-prefetchable and prefetchable windows overlap once rounded to 1 MiB.
    #[error("bridge windows overlap: {mem:x?} and {pref:x?}")]
    WindowsOverlap {
        /// Non-prefetchable window.
        mem: AddrRange,
        /// Prefetchable window.
        pref: AddrRange,
    },
    /// The port's own BAR lies inside one of its windows (claim conflict in the guest).
    #[error("component BAR {bar:#x} lies inside bridge window {window:x?}")]
    ComponentBarInWindow {
        /// Component BAR address.
        bar: u64,
        /// The window.
        window: AddrRange,
    },
}

/// The component block moved: the VMM must re-register the port's MMIO handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarMove {
    /// Previous guest address of the 64 KiB block.
    pub from: u64,
    /// New guest address.
    pub to: u64,
}

/// What a guest configuration write asks of the VMM ([`CxlRootPort::config_write`]);
/// one write can ask for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct ConfigWriteOutcome {
    /// The component block moved: re-register the port's MMIO handler.
    pub bar_move: Option<BarMove>,
    /// The guest asserted Secondary Bus Reset (Bridge Control 0 -> 1) with Unmask SBR
    /// set: a hot reset of the device below, which the VMM performs before the guest's
    /// next access to it (the facade's `vmm::secondary_bus_reset`). An SBR asserted
    /// while Unmask SBR is 0 has no effect on a CXL port and is not reported.
    pub secondary_bus_reset: bool,
}

/// Guest-access counters.
#[derive(Debug, Default)]
pub struct RootPortStats {
    /// Configuration writes that touched no guest-writable bit.
    pub ignored_config_writes: AtomicU64,
    /// Component-block writes (all ignored).
    pub ignored_mmio_writes: AtomicU64,
}

#[derive(Debug)]
struct State {
    cs: ConfigSpace,
    /// Where the component block is decoded (last address reported to the VMM).
    decoded_at: u64,
}

/// The emulated CXL root port.
#[derive(Debug)]
pub struct CxlRootPort {
    port_number: u8,
    windows: BridgeWindows,
    state: Mutex<State>,
    mem_enabled: AtomicBool,
    /// Access counters.
    pub stats: RootPortStats,
}

fn cover(bars: impl Iterator<Item = DeviceBar>) -> Result<Option<AddrRange>, RootPortError> {
    let mut span: Option<(u64, u64)> = None;
    for b in bars {
        let end = b.base.checked_add(b.size).filter(|_| b.size != 0);
        let end = end.ok_or(RootPortError::DeviceBar {
            base: b.base,
            size: b.size,
        })?;
        span = Some(span.map_or((b.base, end), |(lo, hi)| (lo.min(b.base), hi.max(end))));
    }
    let Some((lo, hi)) = span else {
        return Ok(None);
    };
    let base = lo - lo % WINDOW_GRANULE;
    let end = hi
        .checked_next_multiple_of(WINDOW_GRANULE)
        .ok_or(RootPortError::DeviceBar {
            base: lo,
            size: hi - lo,
        })?;
    Ok(Some(AddrRange {
        base,
        size: end - base,
    }))
}

/// Computes the bridge windows for `bars` and checks them against `component_bar`.
pub fn plan_windows(
    bars: &[DeviceBar],
    component_bar: u64,
) -> Result<BridgeWindows, RootPortError> {
    if let Some(b) = bars
        .iter()
        .find(|b| !b.prefetchable && b.base.saturating_add(b.size) > FOUR_GIB)
    {
        return Err(RootPortError::NonPrefetchableAbove4G {
            base: b.base,
            size: b.size,
        });
    }
    let mem = cover(bars.iter().copied().filter(|b| !b.prefetchable))?;
    let pref = cover(bars.iter().copied().filter(|b| b.prefetchable))?;
    if let (Some(mem), Some(pref)) = (mem, pref)
        && mem.overlaps(&pref)
    {
        return Err(RootPortError::WindowsOverlap { mem, pref });
    }
    let own = AddrRange {
        base: component_bar,
        size: COMPONENT_BLOCK_SIZE,
    };
    if let Some(window) = [mem, pref].into_iter().flatten().find(|w| w.overlaps(&own)) {
        return Err(RootPortError::ComponentBarInWindow {
            bar: component_bar,
            window,
        });
    }
    Ok(BridgeWindows { mem, pref })
}

impl CxlRootPort {
    /// Size of the component block BAR.
    pub const BAR_SIZE: u64 = COMPONENT_BLOCK_SIZE;

    /// Validates `cfg` and builds the port.
    pub fn new(cfg: &RootPortConfig) -> Result<Self, RootPortError> {
        if cfg.secondary_bus <= cfg.primary_bus {
            return Err(RootPortError::BusNumbers {
                primary: cfg.primary_bus,
                secondary: cfg.secondary_bus,
            });
        }
        let LinkParams { speed, width } = cfg.link;
        if !(1..=MAX_LINK_SPEED).contains(&speed) || !LINK_WIDTHS.contains(&width) {
            return Err(RootPortError::Link { speed, width });
        }
        let bar = cfg.component_bar;
        if bar == 0
            || !bar.is_multiple_of(COMPONENT_BLOCK_SIZE)
            || bar.checked_add(COMPONENT_BLOCK_SIZE).is_none()
        {
            return Err(RootPortError::ComponentBar(bar));
        }
        let windows = plan_windows(&cfg.device_bars, bar)?;
        let mut cs = ConfigSpace::default();
        config::install_header(
            &mut cs,
            &HeaderParams {
                vendor_id: cfg.vendor_id,
                device_id: cfg.device_id,
                revision: cfg.revision,
                primary_bus: cfg.primary_bus,
                secondary_bus: cfg.secondary_bus,
                bar,
                windows,
            },
        );
        config::install_pcie_cap(&mut cs, cfg.port_number, cfg.link);
        dvsec::install(&mut cs, FlexBusBits::link_of(cfg.device_flex_bus));
        let mem_enabled = cs.u16_at(COMMAND) & COMMAND_MEMORY != 0;
        Ok(Self {
            port_number: cfg.port_number,
            windows,
            state: Mutex::new(State {
                cs,
                decoded_at: bar,
            }),
            mem_enabled: AtomicBool::new(mem_enabled),
            stats: RootPortStats::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data that is consistent after every statement; a panic
        // elsewhere while holding the lock cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The PCIe Port Number (dport id).
    pub fn port_number(&self) -> u8 {
        self.port_number
    }

    /// The bridge windows shown to the guest.
    pub fn windows(&self) -> BridgeWindows {
        self.windows
    }

    /// Guest address where the component block is decoded now.
    pub fn component_block_address(&self) -> u64 {
        self.lock().decoded_at
    }

    /// Guest configuration read of `data.len()` bytes at `offset` (any size, any
    /// alignment; bytes past the 4 KiB space read 0xFF).
    pub fn config_read(&self, offset: u64, data: &mut [u8]) {
        self.lock().cs.read(offset, data);
    }

    /// Guest configuration write of `data` at `offset` (any size, any alignment).
    ///
    /// Host-owned bits are ignored. The outcome carries a [`BarMove`] when the guest
    /// relocated the component block BAR (memory decoding on and a real address, not a
    /// sizing probe), and a secondary bus reset when the guest asserted SBR with Unmask
    /// SBR set.
    pub fn config_write(&self, offset: u64, data: &[u8]) -> ConfigWriteOutcome {
        let mut st = self.lock();
        let sbr_before = st.cs.u16_at(BRIDGE_CONTROL) & BRIDGE_CONTROL_SBR != 0;
        if st.cs.write(offset, data) == 0 {
            self.stats
                .ignored_config_writes
                .fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "cxl root port {}: ignored {}-byte config write at {offset:#x} (host-owned)",
                self.port_number,
                data.len()
            );
            return ConfigWriteOutcome::default();
        }
        ConfigWriteOutcome {
            secondary_bus_reset: self.sbr_asserted(&st, sbr_before),
            bar_move: self.bar_moved(&mut st),
        }
    }

    /// Whether the last write asserted an unmasked Secondary Bus Reset.
    fn sbr_asserted(&self, st: &State, before: bool) -> bool {
        if before || st.cs.u16_at(BRIDGE_CONTROL) & BRIDGE_CONTROL_SBR == 0 {
            return false;
        }
        let ctl = st.cs.u16_at(dvsec::PORT_EXT_AT + port_ext::CONTROL);
        let unmasked = ctl & port_ext::CONTROL_UNMASK_SBR != 0;
        if unmasked {
            log::info!(
                "cxl root port {}: secondary bus reset asserted",
                self.port_number
            );
        } else {
            log::info!(
                "cxl root port {}: secondary bus reset asserted with Unmask SBR = 0: no effect",
                self.port_number
            );
        }
        unmasked
    }

    /// Tracks memory decoding, and returns the component block's new address if the
    /// last write moved it.
    fn bar_moved(&self, st: &mut State) -> Option<BarMove> {
        let mem = st.cs.u16_at(COMMAND) & COMMAND_MEMORY != 0;
        self.mem_enabled.store(mem, Ordering::SeqCst);
        let lo = st.cs.u32_at(BAR0);
        let hi = st.cs.u32_at(BAR1);
        let sizing = lo & BAR_LO_WRITABLE == BAR_LO_WRITABLE || hi == u32::MAX;
        let addr = (u64::from(hi) << 32) | u64::from(lo & BAR_LO_WRITABLE);
        if !mem || sizing || addr == 0 || addr == st.decoded_at {
            return None;
        }
        let mv = BarMove {
            from: st.decoded_at,
            to: addr,
        };
        st.decoded_at = addr;
        log::info!(
            "cxl root port {}: component block moved {:#x} -> {:#x}",
            self.port_number,
            mv.from,
            mv.to
        );
        Some(mv)
    }

    /// Component-block read (offset relative to the BAR); all-ones while the guest
    /// has memory decoding disabled.
    pub fn component_read(&self, offset: u64, data: &mut [u8]) {
        if self.mem_enabled.load(Ordering::SeqCst) {
            component::read(offset, data);
        } else {
            data.fill(0xFF);
        }
    }

    /// Component-block write: every register is read-only, the write is ignored.
    pub fn component_write(&self, offset: u64, data: &[u8]) {
        self.stats
            .ignored_mmio_writes
            .fetch_add(1, Ordering::Relaxed);
        log::debug!(
            "cxl root port {}: ignored {}-byte component write at {offset:#x}",
            self.port_number,
            data.len()
        );
    }
}

#[cfg(test)]
mod tests;
