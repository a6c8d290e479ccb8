//! Topology invariants of guest topology C (host bridge → CXL root port → device),
//! checked in one place before anything is built.
//!
//! The VMM commits and locks the device's HDM decoder 0 at the CFMWS window; the guest
//! auto-assembles a region only if every decoder on the path agrees with it
//! (`shared/spec/guest-topology.md` §4). [`plan_topology`] checks, in this order, and
//! returns the first broken invariant as its own [`TopologyError`] variant:
//!
//! 1. the window is a non-empty 256 MiB-aligned range;
//! 2. the endpoint decoder: committed, locked, HDM Decoder Enable set, a valid
//!    256 MiB-aligned range inside the window, 1 way, a valid granularity,
//!    device-coherent target type (the CFMWS is a Type-2 window);
//! 3. the host-bridge (CHBCR) decoder 0: the committed form (not passthrough), locked,
//!    range equal to the endpoint's, 1 way, granularity equal to the endpoint's, target
//!    list byte 0 = the root port's Port Number;
//! 4. the root port's Port Number is unique below the host bridge;
//! 5. the device's own Flex Bus Port DVSEC exists and shows CXL.mem enabled;
//! 6. the device's CXL Device DVSEC: Mem_Capable, HDM_Count 1 or 2, when Mem_Enable is
//!    set every advertised range has Memory_Info_Valid, ranges that hold memory are
//!    Memory_Active, and the decoder's DPA span (skip + size) fits in the ranges.
//!
//! The [`TopologyPlan`] carries the values the VMM builds from: the host-bridge decoder
//! ([`TopologyPlan::chbcr_decoder`], a `cxl_acpi::CommittedDecoder`) and the Flex Bus
//! link state for the root port.

use cxl_acpi::{CommittedDecoder, Granularity};
use thiserror::Error;

use super::window::{CFMWS_ALIGN, Window};
use crate::regs::dvsec::{DvsecCapability, DvsecControl, DvsecRangeSizeLo};
use crate::regs::hdm::{DecoderCtrl, HdmGlobalControl, join_lo_hi};
use crate::regs::port_dvsec::FlexBusBits;

/// Highest interleave-granularity encoding Linux accepts (16 KiB).
pub const MAX_IG_ENCODING: u8 = 6;
/// Interleave-ways encoding of a 1-way (non-interleaved) decoder.
pub const IW_ONE_WAY: u8 = 0;

/// Granularity in bytes of an IG encoding (`None` when Linux would reject it).
pub fn granularity_bytes(ig: u8) -> Option<u64> {
    (ig <= MAX_IG_ENCODING).then(|| 256u64 << ig)
}

/// The endpoint's HDM decoder 0 as the guest will read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointDecoder {
    /// HPA base (guest physical).
    pub base: u64,
    /// Size.
    pub size: u64,
    /// Decoder Control.
    pub ctrl: DecoderCtrl,
    /// DPA Skip.
    pub dpa_skip: u64,
    /// HDM Decoder Global Control.
    pub global: HdmGlobalControl,
}

impl EndpointDecoder {
    /// From the state the boot-time lock sequence read back
    /// ([`crate::runtime::DecoderState`]) and the decoder's DPA skip.
    pub fn from_state(s: &crate::runtime::DecoderState, dpa_skip: u64) -> Self {
        Self {
            base: s.base,
            size: s.size,
            ctrl: DecoderCtrl::from_bits(s.ctrl),
            dpa_skip,
            global: HdmGlobalControl::new().with_hdm_decoder_enable(s.hdm_enabled),
        }
    }
}

/// Host-bridge decoder 0 of the emulated CHBCR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostBridgeDecoder {
    /// HPA base.
    pub base: u64,
    /// Size.
    pub size: u64,
    /// Interleave granularity (encoded).
    pub ig: u8,
    /// Interleave ways (encoded; [`IW_ONE_WAY`] = 1 way).
    pub iw: u8,
    /// Target List byte 0: the root port's Port Number.
    pub target_port: u8,
    /// Lock On Commit set.
    pub locked: bool,
}

impl HostBridgeDecoder {
    /// The decoder that matches `ep` below the root port `port`: same range and
    /// granularity, 1 way, locked.
    pub fn matching(ep: &EndpointDecoder, port: u8) -> Self {
        Self {
            base: ep.base,
            size: ep.size,
            ig: ep.ctrl.ig(),
            iw: IW_ONE_WAY,
            target_port: port,
            locked: true,
        }
    }

    /// Interleave granularity in bytes (`cxl_acpi::Granularity::from_bytes` input).
    pub fn granularity_bytes(&self) -> Option<u64> {
        granularity_bytes(self.ig)
    }
}

/// The CHBCR form the VMM intends to emulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChbcrDecoder {
    /// No HDM Decoder capability (Linux passthrough decoder).
    Passthrough,
    /// HDM Decoder capability with decoder 0 committed.
    Committed(HostBridgeDecoder),
}

/// One DVSEC range as its four registers read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DvsecRange {
    /// Range Size High.
    pub size_hi: u32,
    /// Range Size Low (valid/active bits and size bits 31:28).
    pub size_lo: DvsecRangeSizeLo,
    /// Range Base High.
    pub base_hi: u32,
    /// Range Base Low.
    pub base_lo: u32,
}

impl DvsecRange {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        join_lo_hi(self.size_lo.into_bits(), self.size_hi)
    }

    /// Base address.
    pub fn base(&self) -> u64 {
        join_lo_hi(self.base_lo, self.base_hi)
    }
}

/// What the device's own config space says, as the guest will read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointFacts {
    /// Flex Bus Port Status of the device's Flex Bus DVSEC (`None`: no such DVSEC).
    pub flex_bus_status: Option<FlexBusBits>,
    /// DVSEC CXL Capability.
    pub capability: DvsecCapability,
    /// DVSEC CXL Control.
    pub control: DvsecControl,
    /// DVSEC Range 1 and 2.
    pub ranges: [DvsecRange; 2],
}

/// Everything [`plan_topology`] checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyInput {
    /// The CFMWS window.
    pub window: Window,
    /// The locked endpoint decoder 0.
    pub endpoint: EndpointDecoder,
    /// The CHBCR decoder the VMM will emulate.
    pub chbcr: ChbcrDecoder,
    /// The root port's PCIe Port Number.
    pub root_port_number: u8,
    /// Port Numbers of other root ports below the same host bridge.
    pub sibling_port_numbers: Vec<u8>,
    /// The device's DVSEC facts.
    pub device: EndpointFacts,
}

/// The checked topology: the values the VMM builds the CHBCR and root port from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyPlan {
    /// The CFMWS window.
    pub window: Window,
    /// Host-bridge decoder 0 (`CommittedDecoder { base, size, granularity, target_port }`).
    pub host_bridge: HostBridgeDecoder,
    /// Host-bridge decoder granularity in bytes.
    pub granularity: u64,
    /// The root port's Port Number.
    pub root_port_number: u8,
    /// The device's Flex Bus Port Status (feed to the root port's `device_flex_bus`).
    pub device_flex_bus: FlexBusBits,
}

impl TopologyPlan {
    /// The CHBCR's committed decoder 0 as `cxl_acpi` emulates it: the plan's range,
    /// granularity and target port. The only error is a granularity without a CFMWS
    /// encoding, which [`plan_topology`] has already ruled out.
    pub fn chbcr_decoder(&self) -> Result<CommittedDecoder, TopologyError> {
        let hb = self.host_bridge;
        let granularity =
            Granularity::from_bytes(self.granularity).ok_or(TopologyError::Granularity(hb.ig))?;
        Ok(CommittedDecoder {
            base: hb.base,
            size: hb.size,
            granularity,
            target_port: hb.target_port,
        })
    }
}

/// One variant per broken invariant.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TopologyError {
    /// The window is empty, misaligned or wraps.
    #[error("CFMWS window {base:#x}+{size:#x} is not a non-empty 256 MiB-aligned range")]
    Window {
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// Endpoint decoder 0 is not committed.
    #[error("endpoint decoder 0 is not committed (control {0:#010x})")]
    EndpointNotCommitted(u32),
    /// Endpoint decoder 0 is committed without Lock On Commit.
    #[error("endpoint decoder 0 is not locked (control {0:#010x})")]
    EndpointNotLocked(u32),
    /// HDM Decoder Enable is clear: guests would decode from the DVSEC ranges instead.
    #[error("endpoint HDM Decoder Enable is clear")]
    HdmDecodingDisabled,
    /// The endpoint range is empty, misaligned or wraps.
    #[error("endpoint decoder range {base:#x}+{size:#x} is not a non-empty 256 MiB-aligned range")]
    EndpointRange {
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// The endpoint range is not inside the window (Linux: "no CXL window for range").
    #[error("endpoint decoder {base:#x}+{size:#x} is outside the window {window:x?}")]
    EndpointOutsideWindow {
        /// Base.
        base: u64,
        /// Size.
        size: u64,
        /// Window.
        window: Window,
    },
    /// The endpoint decoder interleaves (a Type-2 attach needs a 1-way region).
    #[error("endpoint decoder interleaves (IW encoding {0})")]
    EndpointInterleaved(u8),
    /// The endpoint IG encoding is not one Linux accepts.
    #[error("endpoint interleave granularity encoding {0} is invalid")]
    Granularity(u8),
    /// The endpoint decoder targets host-only memory but the window is device-coherent.
    #[error("endpoint decoder 0 is host-only (Type-3); the CFMWS is device-coherent")]
    EndpointHostOnly,
    /// The CHBCR has no HDM decoder: the passthrough decoder never matches a locked
    /// endpoint range, so the region cannot be assembled.
    #[error("CHBCR passthrough form cannot carry a pre-committed endpoint decoder")]
    ChbcrPassthrough,
    /// The host-bridge decoder is not locked.
    #[error("host-bridge decoder 0 is not locked")]
    HostBridgeNotLocked,
    /// The host-bridge decoder range differs from the endpoint's.
    #[error(
        "host-bridge decoder {hb_base:#x}+{hb_size:#x} != endpoint decoder {ep_base:#x}+{ep_size:#x}"
    )]
    HostBridgeRange {
        /// Host-bridge base.
        hb_base: u64,
        /// Host-bridge size.
        hb_size: u64,
        /// Endpoint base.
        ep_base: u64,
        /// Endpoint size.
        ep_size: u64,
    },
    /// The host-bridge decoder interleaves.
    #[error("host-bridge decoder interleaves (IW encoding {0})")]
    HostBridgeInterleaved(u8),
    /// The host-bridge granularity differs from the endpoint's.
    #[error("host-bridge IG encoding {host_bridge} != endpoint IG encoding {endpoint}")]
    HostBridgeGranularity {
        /// Host bridge.
        host_bridge: u8,
        /// Endpoint.
        endpoint: u8,
    },
    /// The host-bridge target is not the root port.
    #[error("host-bridge target port {target} is not the root port's number {port}")]
    HostBridgeTarget {
        /// Target List byte 0.
        target: u8,
        /// Root port number.
        port: u8,
    },
    /// Two root ports below the bridge share a Port Number.
    #[error("root port number {0} is not unique below the host bridge")]
    DuplicatePortNumber(u8),
    /// The device has no Flex Bus Port DVSEC (Type-2 drivers gate on it).
    #[error("device has no Flex Bus Port DVSEC")]
    NoFlexBus,
    /// The device's Flex Bus status does not show CXL.mem enabled.
    #[error("device Flex Bus status {0:#06x} does not show CXL.mem enabled")]
    FlexBusNoMem(u16),
    /// DVSEC Mem_Capable is clear.
    #[error("device DVSEC says not Mem_Capable")]
    NotMemCapable,
    /// DVSEC HDM_Count is not 1 or 2.
    #[error("device DVSEC HDM_Count {0} is not 1 or 2")]
    HdmCount(u8),
    /// An advertised range lacks Memory_Info_Valid while Mem_Enable is set (Linux
    /// times out and fails the endpoint).
    #[error("DVSEC range {0} lacks Memory_Info_Valid")]
    RangeInfoNotValid(usize),
    /// A range that holds memory is not Memory_Active.
    #[error("DVSEC range {0} is not Memory_Active")]
    RangeNotActive(usize),
    /// The decoder's DPA span exceeds the device memory the DVSEC ranges describe.
    #[error("decoder DPA span {span:#x} exceeds device memory {capacity:#x}")]
    DeviceMemory {
        /// DPA skip + decoder size.
        span: u64,
        /// Sum of valid DVSEC range sizes.
        capacity: u64,
    },
}

fn aligned_range(base: u64, size: u64) -> bool {
    size != 0
        && base.is_multiple_of(CFMWS_ALIGN)
        && size.is_multiple_of(CFMWS_ALIGN)
        && base.checked_add(size).is_some()
}

fn check_endpoint(window: &Window, ep: &EndpointDecoder) -> Result<(), TopologyError> {
    let ctrl = ep.ctrl;
    if !ctrl.committed() {
        return Err(TopologyError::EndpointNotCommitted(ctrl.into_bits()));
    }
    if !ctrl.lock_on_commit() {
        return Err(TopologyError::EndpointNotLocked(ctrl.into_bits()));
    }
    if !ep.global.hdm_decoder_enable() {
        return Err(TopologyError::HdmDecodingDisabled);
    }
    if !aligned_range(ep.base, ep.size) {
        return Err(TopologyError::EndpointRange {
            base: ep.base,
            size: ep.size,
        });
    }
    if ep.base < window.base || ep.base + ep.size > window.base + window.size {
        return Err(TopologyError::EndpointOutsideWindow {
            base: ep.base,
            size: ep.size,
            window: *window,
        });
    }
    if ctrl.iw() != IW_ONE_WAY {
        return Err(TopologyError::EndpointInterleaved(ctrl.iw()));
    }
    if granularity_bytes(ctrl.ig()).is_none() {
        return Err(TopologyError::Granularity(ctrl.ig()));
    }
    if ctrl.target_type_hostonly() {
        return Err(TopologyError::EndpointHostOnly);
    }
    Ok(())
}

fn check_host_bridge(
    chbcr: &ChbcrDecoder,
    ep: &EndpointDecoder,
    port: u8,
) -> Result<HostBridgeDecoder, TopologyError> {
    let ChbcrDecoder::Committed(hb) = *chbcr else {
        return Err(TopologyError::ChbcrPassthrough);
    };
    if !hb.locked {
        return Err(TopologyError::HostBridgeNotLocked);
    }
    if (hb.base, hb.size) != (ep.base, ep.size) {
        return Err(TopologyError::HostBridgeRange {
            hb_base: hb.base,
            hb_size: hb.size,
            ep_base: ep.base,
            ep_size: ep.size,
        });
    }
    if hb.iw != IW_ONE_WAY {
        return Err(TopologyError::HostBridgeInterleaved(hb.iw));
    }
    if hb.ig != ep.ctrl.ig() {
        return Err(TopologyError::HostBridgeGranularity {
            host_bridge: hb.ig,
            endpoint: ep.ctrl.ig(),
        });
    }
    if hb.target_port != port {
        return Err(TopologyError::HostBridgeTarget {
            target: hb.target_port,
            port,
        });
    }
    Ok(hb)
}

fn check_device(dev: &EndpointFacts, ep: &EndpointDecoder) -> Result<FlexBusBits, TopologyError> {
    let fb = dev.flex_bus_status.ok_or(TopologyError::NoFlexBus)?;
    if !fb.mem() {
        return Err(TopologyError::FlexBusNoMem(fb.into_bits()));
    }
    if !dev.capability.mem_capable() {
        return Err(TopologyError::NotMemCapable);
    }
    let count = dev.capability.hdm_count();
    if !(1..=2).contains(&count) {
        return Err(TopologyError::HdmCount(count));
    }
    let mut capacity = 0u64;
    for (i, r) in dev.ranges.iter().take(usize::from(count)).enumerate() {
        if !r.size_lo.memory_info_valid() {
            if dev.control.mem_enable() {
                return Err(TopologyError::RangeInfoNotValid(i));
            }
            continue;
        }
        if r.size() != 0 && !r.size_lo.memory_active() {
            return Err(TopologyError::RangeNotActive(i));
        }
        capacity = capacity.saturating_add(r.size());
    }
    let span = ep.dpa_skip.saturating_add(ep.size);
    if span > capacity {
        return Err(TopologyError::DeviceMemory { span, capacity });
    }
    Ok(fb)
}

/// Checks every invariant of the topology and returns the values to build from.
pub fn plan_topology(input: &TopologyInput) -> Result<TopologyPlan, TopologyError> {
    let w = input.window;
    if !aligned_range(w.base, w.size) {
        return Err(TopologyError::Window {
            base: w.base,
            size: w.size,
        });
    }
    check_endpoint(&w, &input.endpoint)?;
    let port = input.root_port_number;
    let host_bridge = check_host_bridge(&input.chbcr, &input.endpoint, port)?;
    if input.sibling_port_numbers.contains(&port) {
        return Err(TopologyError::DuplicatePortNumber(port));
    }
    let device_flex_bus = check_device(&input.device, &input.endpoint)?;
    let granularity =
        granularity_bytes(host_bridge.ig).ok_or(TopologyError::Granularity(host_bridge.ig))?;
    Ok(TopologyPlan {
        window: w,
        host_bridge,
        granularity,
        root_port_number: port,
        device_flex_bus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_encodings() {
        assert_eq!(granularity_bytes(0), Some(256));
        assert_eq!(granularity_bytes(6), Some(16 << 10));
        assert_eq!(granularity_bytes(7), None);
    }

    #[test]
    fn chbcr_decoder_refuses_a_granularity_without_encoding() {
        let hb = HostBridgeDecoder {
            base: 1 << 32,
            size: 1 << 28,
            ig: 7,
            iw: IW_ONE_WAY,
            target_port: 1,
            locked: true,
        };
        let plan = |granularity| TopologyPlan {
            window: Window {
                base: 1 << 32,
                size: 1 << 28,
            },
            host_bridge: hb,
            granularity,
            root_port_number: 1,
            device_flex_bus: FlexBusBits::new().with_mem(true),
        };
        assert_eq!(
            plan(32 << 10).chbcr_decoder(),
            Err(TopologyError::Granularity(7))
        );
        let d = plan(1024).chbcr_decoder().expect("1 KiB encodes");
        assert_eq!((d.base, d.size, d.target_port), (1 << 32, 1 << 28, 1));
        assert_eq!(d.granularity, Granularity::K1);
    }

    #[test]
    fn dvsec_range_decodes_size_and_base_ignoring_low_bits() {
        let r = DvsecRange {
            size_hi: 1,
            size_lo: DvsecRangeSizeLo::from_bits(0x1000_0003),
            base_hi: 2,
            base_lo: 0x2FFF_FFFF,
        };
        assert_eq!(r.size(), 0x1_1000_0000);
        assert_eq!(r.base(), 0x2_2000_0000);
    }
}
