//! Topology plan of a booted device: reads the facts [`plan_topology`] checks from the
//! device (through the backend, like the probe) and checks them against the host-bridge
//! decoder the VMM will emulate.
//!
//! Everything read here is hostile input: short reads and malformed capability chains
//! are typed errors; reads beyond the config region read as zero (like the probe).

use thiserror::Error;

use super::device::{CxlDevice, DeviceError};
use super::probe::region_read;
use crate::backend::BackendError;
use crate::plan::topology::{
    ChbcrDecoder, DvsecRange, EndpointDecoder, EndpointFacts, HostBridgeDecoder, TopologyError,
    TopologyInput, TopologyPlan, plan_topology,
};
use crate::regs::dvsec::{
    CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, DVSEC_ID_FLEX_BUS, DvsecCapability, DvsecControl,
    DvsecHeader1, DvsecRangeSizeLo, off,
};
use crate::regs::hdm::{DecoderReg, join_lo_hi};
use crate::regs::pci::{ExtCapError, find_dvsec};
use crate::regs::port_dvsec::FlexBusBits;
use crate::regs::port_dvsec::flex_bus;

/// Number of DVSEC ranges a CXL Device DVSEC describes.
const DVSEC_RANGES: u16 = 2;
/// Smallest CXL Device DVSEC that holds both ranges (end of Range 2 Base Low).
const DEVICE_DVSEC_MIN_LEN: u16 = off::range_base_lo(DVSEC_RANGES - 1) + 4;
/// Smallest Flex Bus Port DVSEC that holds the Status register.
const FLEX_BUS_MIN_LEN: u16 = flex_bus::STATUS + 2;

/// Why the topology of a device cannot be planned.
#[derive(Debug, Error)]
pub enum TopologyPlanError {
    /// Reading decoder 0 (or its DPA skip) failed.
    #[error("reading decoder 0")]
    Device(#[source] DeviceError),
    /// A config-space read failed.
    #[error("config space read")]
    ConfigRead(#[source] BackendError),
    /// The extended-capability chain is malformed (loop, bad pointer, bad length).
    #[error("config space capability chain: {0}")]
    ConfigChain(String),
    /// The device has no visible CXL Device DVSEC.
    #[error("device has no visible CXL Device DVSEC")]
    NoDeviceDvsec,
    /// A DVSEC is too short to hold the registers read from it.
    #[error("DVSEC {id:#x} at {offset:#x} is too short ({length:#x} bytes)")]
    DvsecTooShort {
        /// DVSEC ID.
        id: u16,
        /// Config-space offset.
        offset: u16,
        /// Declared length.
        length: u16,
    },
    /// The facts break a topology invariant.
    #[error("topology")]
    Topology(#[source] TopologyError),
}

/// Reads the device facts plan_topology needs from a booted device (decoder 0 read back
/// through the runtime, DPA skip of decoder 0, CXL Device DVSEC capability/control/range
/// 1-2, the device's own Flex Bus Port Status) and checks the topology with the
/// host-bridge decoder that matches decoder 0 below root port `port`
/// ([`HostBridgeDecoder::matching`]). `siblings`: other root-port numbers below the same
/// host bridge.
pub fn plan_device_topology(
    dev: &CxlDevice,
    port: u8,
    siblings: &[u8],
) -> Result<TopologyPlan, TopologyPlanError> {
    let (endpoint, device) = endpoint_facts(dev)?;
    let input = TopologyInput {
        window: dev.window(),
        endpoint,
        chbcr: ChbcrDecoder::Committed(HostBridgeDecoder::matching(&endpoint, port)),
        root_port_number: port,
        sibling_port_numbers: siblings.to_vec(),
        device,
    };
    plan_topology(&input).map_err(TopologyPlanError::Topology)
}

/// Only the endpoint facts (for callers that build [`TopologyInput`] themselves).
pub fn endpoint_facts(
    dev: &CxlDevice,
) -> Result<(EndpointDecoder, EndpointFacts), TopologyPlanError> {
    let state = dev.decoder0().map_err(TopologyPlanError::Device)?;
    let overlay = dev.overlay();
    let regs = overlay.comp_regs();
    let hdm = dev.desc().hdm.block_offset;
    let skip_read = |r: DecoderReg| {
        regs.read(hdm + r.at(0))
            .map_err(|e| TopologyPlanError::Device(DeviceError::Backend(e)))
    };
    // On a device (endpoint) decoder the Target List registers hold the DPA Skip.
    let dpa_skip = join_lo_hi(
        skip_read(DecoderReg::TargetListLo)?,
        skip_read(DecoderReg::TargetListHi)?,
    );
    let endpoint = EndpointDecoder::from_state(&state, dpa_skip);
    let cfg = Config { dev };
    let facts = EndpointFacts {
        flex_bus_status: cfg.flex_bus_status()?,
        ..cfg.device_dvsec()?
    };
    Ok((endpoint, facts))
}

/// Config-space reads through the backend's config region.
struct Config<'a> {
    dev: &'a CxlDevice,
}

impl Config<'_> {
    /// Reads `N` bytes at `off`: zero beyond the region, a short transfer is an error.
    fn read<const N: usize>(&self, off: u16) -> Result<[u8; N], BackendError> {
        let region = self.dev.desc().config;
        region_read(
            &**self.dev.backend(),
            (region.file_offset, region.size),
            u64::from(off),
            "config",
        )
    }

    fn read16(&self, off: u16) -> Result<u16, TopologyPlanError> {
        self.read::<2>(off)
            .map(u16::from_le_bytes)
            .map_err(TopologyPlanError::ConfigRead)
    }

    fn read32(&self, off: u16) -> Result<u32, TopologyPlanError> {
        self.read::<4>(off)
            .map(u32::from_le_bytes)
            .map_err(TopologyPlanError::ConfigRead)
    }

    /// The Flex Bus Port Status of the device's own Flex Bus DVSEC (`None`: absent).
    fn flex_bus_status(&self) -> Result<Option<FlexBusBits>, TopologyPlanError> {
        let rd = |o: u16| self.read::<4>(o).map(u32::from_le_bytes);
        let loc = match find_dvsec(rd, CXL_VENDOR_ID, DVSEC_ID_FLEX_BUS) {
            Ok(Some(loc)) => loc,
            Ok(None) => return Ok(None),
            Err(ExtCapError::Read { source, .. }) => {
                return Err(TopologyPlanError::ConfigRead(source));
            }
            Err(e) => return Err(TopologyPlanError::ConfigChain(e.to_string())),
        };
        if loc.length < FLEX_BUS_MIN_LEN {
            return Err(TopologyPlanError::DvsecTooShort {
                id: DVSEC_ID_FLEX_BUS,
                offset: loc.offset,
                length: loc.length,
            });
        }
        let status = self.read16(loc.offset + flex_bus::STATUS)?;
        Ok(Some(FlexBusBits::from_bits(status)))
    }

    /// Capability, Control and both ranges of the CXL Device DVSEC the probe found.
    /// 16-bit registers are read with 16-bit accesses (v3 splits at DVSEC + 0x0A).
    fn device_dvsec(&self) -> Result<EndpointFacts, TopologyPlanError> {
        let d = self
            .dev
            .desc()
            .dvsec
            .ok_or(TopologyPlanError::NoDeviceDvsec)?;
        let at = d.offset;
        // Every register read below ends before `at + DEVICE_DVSEC_MIN_LEN`.
        if at.checked_add(DEVICE_DVSEC_MIN_LEN).is_none() {
            return Err(TopologyPlanError::ConfigChain(format!(
                "CXL Device DVSEC offset {at:#x} is outside config space"
            )));
        }
        let length = DvsecHeader1::from_bits(self.read32(at + off::HEADER1)?).length();
        if length < DEVICE_DVSEC_MIN_LEN {
            return Err(TopologyPlanError::DvsecTooShort {
                id: DVSEC_ID_CXL_DEVICE,
                offset: at,
                length,
            });
        }
        let mut ranges = [DvsecRange::default(); DVSEC_RANGES as usize];
        for (n, r) in (0..DVSEC_RANGES).zip(ranges.iter_mut()) {
            *r = DvsecRange {
                size_hi: self.read32(at + off::range_size_hi(n))?,
                size_lo: DvsecRangeSizeLo::from_bits(self.read32(at + off::range_size_lo(n))?),
                base_hi: self.read32(at + off::range_base_hi(n))?,
                base_lo: self.read32(at + off::range_base_lo(n))?,
            };
        }
        Ok(EndpointFacts {
            flex_bus_status: None,
            capability: DvsecCapability::from_bits(self.read16(at + off::CAPABILITY)?),
            control: DvsecControl::from_bits(self.read16(at + off::CONTROL)?),
            ranges,
        })
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::sim::{BarLayout, SimConfig, SimDevice};
    use crate::plan::topology::IW_ONE_WAY;
    use crate::plan::{Window, WindowAllocator};
    use crate::runtime::probe::probe;
    use crate::uapi::RevisionChoice;
    use crate::uapi::UapiRevision;

    const PAGE: u64 = 4096;
    const WINDOW_BASE: u64 = 0x40_0000_0000;

    fn device(cfg: SimConfig) -> CxlDevice {
        let sim = Arc::new(SimDevice::new(cfg).expect("sim config"));
        let desc = probe(sim.as_ref(), RevisionChoice::Auto, PAGE).expect("probe");
        let window = WindowAllocator::new(WINDOW_BASE, 1 << 40)
            .expect("allocator")
            .allocate(desc.dpa.size)
            .expect("window");
        CxlDevice::new(sim, desc, window, PAGE).expect("device")
    }

    fn configs() -> Vec<SimConfig> {
        let mut v = Vec::new();
        for rev in UapiRevision::ALL {
            for bar_layout in [BarLayout::End, BarLayout::Start, BarLayout::Middle] {
                for cache_capable in [true, false] {
                    // v4 binds only CXL.cache + CXL.mem devices (else plain vfio-pci).
                    if rev == UapiRevision::V4 && !cache_capable {
                        continue;
                    }
                    v.push(SimConfig {
                        bar_layout,
                        cache_capable,
                        ..SimConfig::new(rev)
                    });
                }
            }
        }
        v
    }

    #[test]
    fn booted_sim_devices_plan_a_locked_one_way_host_bridge_decoder() {
        for cfg in configs() {
            let dev = device(cfg.clone());
            let locked = dev.boot().expect("boot");
            let plan = plan_device_topology(&dev, 3, &[1, 2]).expect("plan");
            let w: Window = dev.window();
            let hb = plan.host_bridge;
            assert_eq!((hb.base, hb.size), (locked.base, locked.size), "{cfg:?}");
            assert_eq!(hb.base, w.base);
            assert_eq!(hb.size, cfg.dpa_size);
            assert_eq!(hb.target_port, 3);
            assert_eq!(hb.iw, IW_ONE_WAY);
            assert!(hb.locked);
            assert_eq!(plan.window, w);
            assert_eq!(plan.root_port_number, 3);
            assert_eq!(plan.granularity, 256, "sim decoder IG encoding 0");
            let d = plan.chbcr_decoder().expect("encodable granularity");
            assert_eq!(
                (d.base, d.size, d.granularity.bytes(), d.target_port),
                (hb.base, hb.size, 256, 3)
            );
            let fb = plan.device_flex_bus;
            assert!(fb.mem() && fb.io() && fb.flit68_vh(), "{cfg:?}: {fb:?}");
            assert_eq!(fb.cache(), cfg.cache_capable, "{cfg:?}");
        }
    }

    #[test]
    fn endpoint_facts_show_the_sim_dvsec() {
        let cfg = SimConfig::new(UapiRevision::V3);
        let dev = device(cfg.clone());
        dev.boot().expect("boot");
        let (ep, facts) = endpoint_facts(&dev).expect("facts");
        assert_eq!(ep.dpa_skip, 0);
        assert!(ep.ctrl.committed() && ep.ctrl.lock_on_commit());
        assert!(facts.capability.mem_capable());
        assert_eq!(facts.capability.hdm_count(), 1);
        assert!(facts.control.mem_enable());
        assert_eq!(facts.ranges[0].size(), cfg.dpa_size);
        assert!(facts.ranges[0].size_lo.memory_active());
        assert_eq!(facts.ranges[1], DvsecRange::default());
        assert_eq!(
            facts.flex_bus_status.map(FlexBusBits::into_bits),
            Some(0x27),
            "cache + io + mem + 68B/VH"
        );
    }

    #[test]
    fn a_sibling_with_the_same_port_number_is_rejected() {
        let dev = device(SimConfig::new(UapiRevision::V2));
        dev.boot().expect("boot");
        let err = plan_device_topology(&dev, 3, &[0, 3]).expect_err("duplicate");
        assert!(
            matches!(
                err,
                TopologyPlanError::Topology(TopologyError::DuplicatePortNumber(3))
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_device_not_booted_is_rejected() {
        // v2's shadow clears LOCK (and zeroes BASE) of a firmware-committed+locked
        // decoder until the VMM locks it; v3's snapshot shows the firmware decoder,
        // locked, at the host address (kernel-vfio-cxl-uapi.md §4, §7).
        let dev = device(SimConfig::new(UapiRevision::V2));
        let err = plan_device_topology(&dev, 3, &[]).expect_err("v2 not booted");
        assert!(
            matches!(
                err,
                TopologyPlanError::Topology(TopologyError::EndpointNotLocked(_))
            ),
            "v2: {err:?}"
        );
        let cfg = SimConfig::new(UapiRevision::V3);
        let dev = device(cfg.clone());
        let err = plan_device_topology(&dev, 3, &[]).expect_err("v3 not booted");
        assert!(
            matches!(
                err,
                TopologyPlanError::Topology(TopologyError::EndpointOutsideWindow { base, .. })
                    if base == cfg.host_hpa
            ),
            "v3: {err:?}"
        );
    }

    #[test]
    fn a_firmware_decoder_without_lock_is_rejected_before_boot() {
        let dev = device(SimConfig {
            firmware_locked: false,
            ..SimConfig::new(UapiRevision::V2)
        });
        let err = plan_device_topology(&dev, 3, &[]).expect_err("not locked");
        assert!(
            matches!(
                err,
                TopologyPlanError::Topology(TopologyError::EndpointNotLocked(_))
            ),
            "{err:?}"
        );
    }
}

#[cfg(all(test, feature = "sim"))]
#[path = "tests_topology.rs"]
mod hostile_tests;
