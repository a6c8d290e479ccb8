//! Planning test of the topology-C invariants: a consistent topology plans, and every
//! broken invariant is reported as its own error.

use cxl_passthrough::plan::Window;
use cxl_passthrough::plan::topology::{
    ChbcrDecoder, DvsecRange, EndpointDecoder, EndpointFacts, HostBridgeDecoder, TopologyError,
    TopologyInput, plan_topology,
};
use cxl_passthrough::regs::dvsec::{DvsecCapability, DvsecControl, DvsecRangeSizeLo};
use cxl_passthrough::regs::hdm::{DecoderCtrl, HdmGlobalControl};
use cxl_passthrough::rootport::FlexBusBits;

const G: u64 = 256 << 20;
const BASE: u64 = 0x100_0000_0000;

fn endpoint() -> EndpointDecoder {
    EndpointDecoder {
        base: BASE,
        size: 4 * G,
        ctrl: DecoderCtrl::new()
            .with_ig(2)
            .with_lock_on_commit(true)
            .with_commit(true)
            .with_committed(true),
        dpa_skip: 0,
        global: HdmGlobalControl::new().with_hdm_decoder_enable(true),
    }
}

fn range(size: u64) -> DvsecRange {
    DvsecRange {
        size_hi: (size >> 32) as u32,
        size_lo: DvsecRangeSizeLo::new()
            .with_memory_info_valid(true)
            .with_memory_active(true)
            .with_size_31_28(((size >> 28) & 0xF) as u8),
        base_hi: 0,
        base_lo: 0,
    }
}

fn input() -> TopologyInput {
    let ep = endpoint();
    TopologyInput {
        window: Window {
            base: BASE,
            size: 8 * G,
        },
        endpoint: ep,
        chbcr: ChbcrDecoder::Committed(HostBridgeDecoder::matching(&ep, 5)),
        root_port_number: 5,
        sibling_port_numbers: vec![],
        device: EndpointFacts {
            flex_bus_status: Some(FlexBusBits::from_bits(0x0027)),
            capability: DvsecCapability::new()
                .with_cache_capable(true)
                .with_io_capable(true)
                .with_mem_capable(true)
                .with_hdm_count(1),
            control: DvsecControl::new()
                .with_io_enable(true)
                .with_mem_enable(true),
            ranges: [range(4 * G), DvsecRange::default()],
        },
    }
}

fn err(f: impl FnOnce(&mut TopologyInput)) -> TopologyError {
    let mut i = input();
    f(&mut i);
    plan_topology(&i).expect_err("invariant should be broken")
}

fn hb(i: &mut TopologyInput) -> &mut HostBridgeDecoder {
    match &mut i.chbcr {
        ChbcrDecoder::Committed(d) => d,
        ChbcrDecoder::Passthrough => panic!("test input is committed"),
    }
}

#[test]
fn consistent_topology_yields_the_chbcr_values() {
    let plan = plan_topology(&input()).unwrap();
    assert_eq!(plan.host_bridge.base, BASE);
    assert_eq!(plan.host_bridge.size, 4 * G);
    assert_eq!(plan.host_bridge.target_port, 5);
    assert_eq!(plan.host_bridge.iw, 0);
    assert_eq!(plan.host_bridge.ig, 2);
    assert_eq!(plan.granularity, 1024);
    assert_eq!(plan.host_bridge.granularity_bytes(), Some(1024));
    assert_eq!(plan.root_port_number, 5);
    assert_eq!(plan.device_flex_bus.into_bits(), 0x0027);
    // Second range present and valid adds capacity; decoder with a skip still fits.
    let mut i = input();
    i.device.capability = i.device.capability.with_hdm_count(2);
    i.device.ranges[1] = range(G);
    i.endpoint.dpa_skip = G;
    i.chbcr = ChbcrDecoder::Committed(HostBridgeDecoder::matching(&i.endpoint, 5));
    assert!(plan_topology(&i).is_ok());
}

#[test]
fn window_invariant() {
    assert!(matches!(
        err(|i| i.window.base += 4096),
        TopologyError::Window { .. }
    ));
    assert!(matches!(
        err(|i| i.window.size = 0),
        TopologyError::Window { .. }
    ));
    assert!(matches!(
        err(|i| i.window = Window {
            base: u64::MAX - G + 1,
            size: 2 * G
        }),
        TopologyError::Window { .. }
    ));
}

#[test]
fn endpoint_invariants() {
    assert!(matches!(
        err(|i| i.endpoint.ctrl = i.endpoint.ctrl.with_committed(false)),
        TopologyError::EndpointNotCommitted(_)
    ));
    assert!(matches!(
        err(|i| i.endpoint.ctrl = i.endpoint.ctrl.with_lock_on_commit(false)),
        TopologyError::EndpointNotLocked(_)
    ));
    assert_eq!(
        err(|i| i.endpoint.global = HdmGlobalControl::new()),
        TopologyError::HdmDecodingDisabled
    );
    assert!(matches!(
        err(|i| i.endpoint.size = G + 4096),
        TopologyError::EndpointRange { .. }
    ));
    assert!(matches!(
        err(|i| i.endpoint.base = BASE + 6 * G),
        TopologyError::EndpointOutsideWindow { .. }
    ));
    assert!(matches!(
        err(|i| i.endpoint.base = BASE - G),
        TopologyError::EndpointOutsideWindow { .. }
    ));
    assert_eq!(
        err(|i| i.endpoint.ctrl = i.endpoint.ctrl.with_iw(1)),
        TopologyError::EndpointInterleaved(1)
    );
    assert_eq!(
        err(|i| i.endpoint.ctrl = i.endpoint.ctrl.with_ig(7)),
        TopologyError::Granularity(7)
    );
    assert_eq!(
        err(|i| i.endpoint.ctrl = i.endpoint.ctrl.with_target_type_hostonly(true)),
        TopologyError::EndpointHostOnly
    );
}

#[test]
fn host_bridge_invariants() {
    assert_eq!(
        err(|i| i.chbcr = ChbcrDecoder::Passthrough),
        TopologyError::ChbcrPassthrough
    );
    assert_eq!(
        err(|i| hb(i).locked = false),
        TopologyError::HostBridgeNotLocked
    );
    assert!(matches!(
        err(|i| hb(i).base += G),
        TopologyError::HostBridgeRange { .. }
    ));
    assert!(matches!(
        err(|i| hb(i).size = 8 * G),
        TopologyError::HostBridgeRange { .. }
    ));
    assert_eq!(
        err(|i| hb(i).iw = 1),
        TopologyError::HostBridgeInterleaved(1)
    );
    assert_eq!(
        err(|i| hb(i).ig = 0),
        TopologyError::HostBridgeGranularity {
            host_bridge: 0,
            endpoint: 2
        }
    );
    assert_eq!(
        err(|i| hb(i).target_port = 0),
        TopologyError::HostBridgeTarget { target: 0, port: 5 }
    );
    // Renumbering the root port without the decoder breaks the target invariant too.
    assert_eq!(
        err(|i| i.root_port_number = 6),
        TopologyError::HostBridgeTarget { target: 5, port: 6 }
    );
    assert_eq!(
        err(|i| i.sibling_port_numbers = vec![1, 5]),
        TopologyError::DuplicatePortNumber(5)
    );
}

#[test]
fn device_invariants() {
    assert_eq!(
        err(|i| i.device.flex_bus_status = None),
        TopologyError::NoFlexBus
    );
    assert_eq!(
        err(|i| i.device.flex_bus_status = Some(FlexBusBits::from_bits(0x0023))),
        TopologyError::FlexBusNoMem(0x0023)
    );
    assert_eq!(
        err(|i| i.device.capability = i.device.capability.with_mem_capable(false)),
        TopologyError::NotMemCapable
    );
    assert_eq!(
        err(|i| i.device.capability = i.device.capability.with_hdm_count(0)),
        TopologyError::HdmCount(0)
    );
    assert_eq!(
        err(|i| i.device.capability = i.device.capability.with_hdm_count(3)),
        TopologyError::HdmCount(3)
    );
    // A second advertised range without Memory_Info_Valid (Linux: -ETIMEDOUT).
    assert_eq!(
        err(|i| i.device.capability = i.device.capability.with_hdm_count(2)),
        TopologyError::RangeInfoNotValid(1)
    );
    assert_eq!(
        err(|i| i.device.ranges[0].size_lo = i.device.ranges[0].size_lo.with_memory_active(false)),
        TopologyError::RangeNotActive(0)
    );
    assert_eq!(
        err(|i| i.device.ranges[0] = range(2 * G)),
        TopologyError::DeviceMemory {
            span: 4 * G,
            capacity: 2 * G
        }
    );
    assert_eq!(
        err(|i| i.endpoint.dpa_skip = G),
        TopologyError::DeviceMemory {
            span: 5 * G,
            capacity: 4 * G
        }
    );
    // Mem_Enable clear: an invalid range is not read by Linux, but then the decoder
    // has no device memory behind it.
    assert_eq!(
        err(|i| {
            i.device.control = i.device.control.with_mem_enable(false);
            i.device.ranges[0].size_lo = i.device.ranges[0].size_lo.with_memory_info_valid(false);
        }),
        TopologyError::DeviceMemory {
            span: 4 * G,
            capacity: 0
        }
    );
}
