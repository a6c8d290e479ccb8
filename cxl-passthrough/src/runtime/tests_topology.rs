//! Hostile config-space answers seen by the topology reader of a booted device.
//!
//! The device is probed and booted against an honest simulator; then a wrapper backend
//! starts answering config-space reads from a corrupted copy of the config space (or
//! with short transfers). Every case must give its typed [`TopologyPlanError`].

use std::sync::Arc;

use super::*;
use crate::backend::sim::{ConfigOverride, DEVICE_DVSEC, REGLOC_DVSEC, SimConfig, SimDevice};
use crate::plan::WindowAllocator;
use crate::regs::pci::{CONFIG_SPACE_SIZE, ExtCapHeader};
use crate::runtime::probe::probe;
use crate::uapi::RevisionChoice;
use crate::uapi::UapiRevision;

const PAGE: u64 = 4096;

/// A booted device whose config answers `hostile` controls (honest until set).
fn booted(rev: UapiRevision) -> (Arc<ConfigOverride>, CxlDevice) {
    let sim = Arc::new(SimDevice::new(SimConfig::new(rev)).expect("sim config"));
    let desc = probe(sim.as_ref(), RevisionChoice::Auto, PAGE).expect("probe");
    let hostile = Arc::new(ConfigOverride::new(sim, desc.config.file_offset));
    let window = WindowAllocator::new(0x40_0000_0000, 1 << 40)
        .expect("allocator")
        .allocate(desc.dpa.size)
        .expect("window");
    let dev = CxlDevice::new(hostile.clone(), desc, window, PAGE).expect("device");
    dev.boot().expect("boot");
    plan_device_topology(&dev, 3, &[]).expect("honest answers plan");
    (hostile, dev)
}

/// Plans `rev`'s booted device after `patch` rewrote its config space (`patch` also gets
/// the offset of the Flex Bus DVSEC in the honest image).
fn plan_with(rev: UapiRevision, patch: impl FnOnce(&mut Vec<u8>, u16)) -> TopologyPlanError {
    let (hostile, dev) = booted(rev);
    let mut img = hostile.honest_config().expect("config read");
    let flex = find_dvsec(
        |o| Ok::<_, ()>(get32(&img, o)),
        CXL_VENDOR_ID,
        DVSEC_ID_FLEX_BUS,
    )
    .expect("honest chain")
    .expect("the sim has a Flex Bus DVSEC")
    .offset;
    assert!(
        flex > REGLOC_DVSEC,
        "the Flex Bus DVSEC follows the Register Locator"
    );
    patch(&mut img, flex);
    hostile.serve(Some(img), 0);
    plan_device_topology(&dev, 3, &[]).expect_err("hostile config space")
}

fn put32(img: &mut [u8], at: u16, v: u32) {
    let at = usize::from(at);
    img[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get32(img: &[u8], at: u16) -> u32 {
    let at = usize::from(at);
    u32::from_le_bytes(img[at..at + 4].try_into().expect("4 bytes"))
}

/// Points the `next` of the extended capability at `at` to `next`.
fn set_next(img: &mut [u8], at: u16, next: u16) {
    let h = ExtCapHeader::from_bits(get32(img, at)).with_next(next);
    put32(img, at, h.into_bits());
}

/// Sets the length of the DVSEC at `at`.
fn set_dvsec_len(img: &mut [u8], at: u16, length: u16) {
    let h = DvsecHeader1::from_bits(get32(img, at + off::HEADER1)).with_length(length);
    put32(img, at + off::HEADER1, h.into_bits());
}

const REVS: [UapiRevision; 3] = UapiRevision::ALL;

#[test]
fn a_short_config_read_is_a_config_read_error() {
    for rev in REVS {
        let (hostile, dev) = booted(rev);
        hostile.serve(None, 1);
        let err = plan_device_topology(&dev, 3, &[]).expect_err("short read");
        assert!(
            matches!(
                err,
                TopologyPlanError::ConfigRead(BackendError::Short {
                    done: 2,
                    wanted: 4,
                    ..
                })
            ),
            "{rev:?}: {err:?}"
        );
        // The device itself is fine: honest answers plan again.
        hostile.serve(None, 0);
        plan_device_topology(&dev, 3, &[]).expect("honest again");
    }
}

#[test]
fn a_looping_capability_chain_is_a_chain_error() {
    for rev in REVS {
        // Register Locator -> CXL Device DVSEC (backwards) before the Flex Bus DVSEC.
        let err = plan_with(rev, |img, _| set_next(img, REGLOC_DVSEC, DEVICE_DVSEC));
        assert!(
            matches!(&err, TopologyPlanError::ConfigChain(m) if m.contains("loops")),
            "{rev:?}: {err:?}"
        );
        // A capability pointing at itself.
        let err = plan_with(rev, |img, _| set_next(img, REGLOC_DVSEC, REGLOC_DVSEC));
        assert!(
            matches!(&err, TopologyPlanError::ConfigChain(m) if m.contains("loops")),
            "{rev:?}: {err:?}"
        );
    }
}

#[test]
fn an_out_of_range_or_unaligned_pointer_is_a_chain_error() {
    for rev in REVS {
        for bad in [0xFFC, 0xFFE, REGLOC_DVSEC + 2, 0x0F0 /* below 0x100 */] {
            let err = plan_with(rev, |img, _| set_next(img, REGLOC_DVSEC, bad));
            let want = format!("pointer {bad:#x} is invalid");
            assert!(
                matches!(&err, TopologyPlanError::ConfigChain(m) if m.contains(&want)),
                "{rev:?} next={bad:#x}: {err:?}"
            );
        }
    }
}

#[test]
fn a_flex_bus_dvsec_longer_than_config_space_is_a_chain_error() {
    let err = plan_with(UapiRevision::V3, |img, flex| {
        set_dvsec_len(img, flex, CONFIG_SPACE_SIZE - 1)
    });
    assert!(
        matches!(&err, TopologyPlanError::ConfigChain(m) if m.contains("invalid length")),
        "{err:?}"
    );
}

#[test]
fn a_flex_bus_dvsec_without_room_for_status_is_too_short() {
    for rev in REVS {
        // 0x0A passes the walk (a DVSEC header fits) but Status sits at 0x0E.
        for length in [0x0A, 0x0E, FLEX_BUS_MIN_LEN - 1] {
            let mut at = 0;
            let err = plan_with(rev, |img, flex| {
                at = flex;
                set_dvsec_len(img, flex, length)
            });
            assert!(
                matches!(
                    err,
                    TopologyPlanError::DvsecTooShort { id: DVSEC_ID_FLEX_BUS, offset, length: l }
                        if offset == at && l == length
                ),
                "{rev:?} length={length:#x}: {err:?}"
            );
        }
    }
}

#[test]
fn a_device_dvsec_without_room_for_range_2_is_too_short() {
    for rev in REVS {
        let length = DEVICE_DVSEC_MIN_LEN - 4;
        let err = plan_with(rev, |img, _| set_dvsec_len(img, DEVICE_DVSEC, length));
        assert!(
            matches!(
                err,
                TopologyPlanError::DvsecTooShort { id: DVSEC_ID_CXL_DEVICE, offset, length: l }
                    if offset == DEVICE_DVSEC && l == length
            ),
            "{rev:?}: {err:?}"
        );
    }
}

#[test]
fn a_flex_bus_status_without_cxl_mem_is_rejected() {
    for rev in REVS {
        let mut want = 0;
        let err = plan_with(rev, |img, flex| {
            let at = usize::from(flex + flex_bus::STATUS);
            let old = FlexBusBits::from_bits(u16::from_le_bytes([img[at], img[at + 1]]));
            assert!(old.mem(), "the sim link trains CXL.mem");
            want = old.with_mem(false).into_bits();
            img[at..at + 2].copy_from_slice(&want.to_le_bytes());
        });
        assert!(
            matches!(
                err,
                TopologyPlanError::Topology(TopologyError::FlexBusNoMem(bits)) if bits == want
            ),
            "{rev:?}: {err:?}"
        );
    }
}

#[test]
fn a_chain_without_a_flex_bus_dvsec_is_no_flex_bus() {
    for rev in REVS {
        // The chain ends at the Register Locator.
        let err = plan_with(rev, |img, _| set_next(img, REGLOC_DVSEC, 0));
        assert!(
            matches!(err, TopologyPlanError::Topology(TopologyError::NoFlexBus)),
            "{rev:?} chain ends: {err:?}"
        );
        // A Flex Bus DVSEC ID under another vendor is not the CXL one.
        let err = plan_with(rev, |img, flex| {
            let h = DvsecHeader1::from_bits(get32(img, flex + off::HEADER1))
                .with_vendor(CXL_VENDOR_ID ^ 1);
            put32(img, flex + off::HEADER1, h.into_bits());
        });
        assert!(
            matches!(err, TopologyPlanError::Topology(TopologyError::NoFlexBus)),
            "{rev:?} other vendor: {err:?}"
        );
    }
}

#[test]
fn a_vanished_device_reading_all_ones_has_no_flex_bus() {
    for rev in REVS {
        let err = plan_with(rev, |img, _| img.fill(0xFF));
        assert!(
            matches!(err, TopologyPlanError::Topology(TopologyError::NoFlexBus)),
            "{rev:?}: {err:?}"
        );
    }
}
