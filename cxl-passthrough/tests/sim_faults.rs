//! Every injectable fault, observed the way a backend user sees it.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, CapChainFault, Fault, InfoTarget, Op, SimDevice};
use cxl_passthrough::backend::{Backend, BackendError, ResetKind};
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::uapi::wire::*;
use sim_common::*;

/// An operation returning its errno, if any.
type Call<'a> = dyn Fn(&SimDevice) -> Option<i32> + 'a;

fn dev(rev: UapiRevision) -> SimDevice {
    device(rev, BarLayout::Middle)
}

#[test]
fn eio_on_each_op_with_count() {
    let d = dev(UapiRevision::V2);
    let comp = d.region_offset(10).unwrap();
    let ops: [(Op, &Call<'_>); 6] = [
        (Op::DeviceInfo, &|d| {
            d.device_info().err().and_then(|e| e.raw_os_error())
        }),
        (Op::RegionInfo, &|d| {
            d.region_info(2).err().and_then(|e| e.raw_os_error())
        }),
        (Op::Read, &|d| {
            d.read(comp, 0, &mut [0; 4])
                .err()
                .and_then(|e| e.raw_os_error())
        }),
        (Op::Write, &|d| {
            d.write(comp, 0, &[0; 4])
                .err()
                .and_then(|e| e.raw_os_error())
        }),
        (Op::Reset, &|d| {
            d.reset(ResetKind::Device)
                .err()
                .and_then(|e| e.raw_os_error())
        }),
        (Op::Mmap, &|d| {
            d.mmap_source(d.region_offset(9).unwrap())
                .err()
                .and_then(|e| e.raw_os_error())
        }),
    ];
    for (op, call) in ops {
        d.inject(Fault::Eio { op, count: Some(2) });
        assert_eq!(call(&d), Some(libc::EIO), "{op:?} 1st");
        assert_eq!(call(&d), Some(libc::EIO), "{op:?} 2nd");
        assert_eq!(call(&d), None, "{op:?} recovers after count");
    }
    // Op::Any hits everything until cleared.
    d.inject(Fault::Errno {
        op: Op::Any,
        errno: libc::ENODEV,
        count: None,
    });
    for _ in 0..3 {
        assert_eq!(
            d.device_info().unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
        assert_eq!(
            d.read(comp, 0, &mut [0; 4]).unwrap_err().raw_os_error(),
            Some(libc::ENODEV)
        );
    }
    d.clear_faults();
    assert!(d.device_info().is_ok());
}

#[test]
fn short_read_and_write() {
    let d = dev(UapiRevision::V3);
    let hdm = d.region_offset(10).unwrap();
    d.inject(Fault::ShortRead);
    let mut b = [0u8; 8];
    d.dpa_host_write(0, &[7; 8]).unwrap();
    assert_eq!(d.read(hdm, 0, &mut b).unwrap(), 4);
    assert_eq!(b, [7, 7, 7, 7, 0, 0, 0, 0]);
    assert_eq!(d.read(hdm, 0, &mut b).unwrap(), 8, "one-shot");
    d.inject(Fault::ShortWrite);
    assert_eq!(d.write(hdm, 0, &[1; 8]).unwrap(), 4);
    let mut host = [0u8; 8];
    d.dpa_host_read(0, &mut host).unwrap();
    assert_eq!(
        host, [1; 8],
        "the write took effect, only the count is short"
    );
    // A v2 COMP_REGS dword read comes back as 2 bytes.
    let v2 = dev(UapiRevision::V2);
    v2.inject(Fault::ShortRead);
    let comp = v2.region_offset(10).unwrap();
    let mut w = [0u8; 4];
    assert_eq!(v2.read(comp, 0, &mut w).unwrap(), 2);
    assert_eq!(w, [0x01, 0x00, 0, 0]);
}

fn chain_of(raw: &[u8], first: u32) -> Vec<(usize, CapHeader)> {
    let mut out = vec![];
    let mut off = first as usize;
    while off != 0 && out.len() < 4 {
        let Some(h) = CapHeader::decode(raw, off) else {
            break;
        };
        out.push((off, h));
        off = h.next as usize;
    }
    out
}

#[test]
fn malformed_device_info_chains() {
    // v4's GET_INFO has no capability chain; its chains are on the COMP_REGS region
    // (sim_v4.rs breaks those).
    for rev in [UapiRevision::V2, UapiRevision::V3] {
        let good = dev(rev).device_info().unwrap();
        let good_len = good.len();
        for kind in [
            CapChainFault::Loop,
            CapChainFault::NextOutOfBounds,
            CapChainFault::Truncated,
            CapChainFault::BogusCxlCapSize,
        ] {
            let d = dev(rev);
            d.inject(Fault::MalformedCapChain {
                target: InfoTarget::DeviceInfo,
                kind,
            });
            let raw = d.device_info().unwrap();
            let h = DeviceInfoHeader::decode(&raw).unwrap();
            assert_eq!(h.cap_offset, 24);
            let c = chain_of(&raw, h.cap_offset);
            match kind {
                CapChainFault::Loop => assert_eq!(c[0].1.next, 24),
                CapChainFault::NextOutOfBounds => assert!(c[0].1.next as usize > raw.len()),
                CapChainFault::Truncated => {
                    assert_eq!(raw.len(), 24 + 16);
                    assert!(raw.len() < good_len);
                    assert!(CxlCapV2::decode(&raw, 24).is_none());
                }
                CapChainFault::BogusCxlCapSize => {
                    assert_eq!(raw.len(), 24 + 40);
                    assert_eq!(c.len(), 1);
                }
            }
        }
    }
}

#[test]
fn malformed_region_chains() {
    let d = dev(UapiRevision::V2);
    d.inject(Fault::MalformedCapChain {
        target: InfoTarget::Region(2),
        kind: CapChainFault::Truncated,
    });
    d.inject(Fault::MalformedCapChain {
        target: InfoTarget::Region(9),
        kind: CapChainFault::Loop,
    });
    let raw = d.region_info(2).unwrap();
    let h = RegionInfoHeader::decode(&raw).unwrap();
    let nr = le32(&raw, h.cap_offset as usize + 8).unwrap() as usize;
    assert!(
        h.cap_offset as usize + 16 + 16 * nr > raw.len(),
        "nr_areas overruns the answer"
    );
    let raw = d.region_info(9).unwrap();
    let h = RegionInfoHeader::decode(&raw).unwrap();
    assert_eq!(
        CapHeader::decode(&raw, h.cap_offset as usize).unwrap().next,
        h.cap_offset
    );
    d.inject(Fault::MalformedCapChain {
        target: InfoTarget::Region(10),
        kind: CapChainFault::NextOutOfBounds,
    });
    let raw = d.region_info(10).unwrap();
    let h = RegionInfoHeader::decode(&raw).unwrap();
    let next = CapHeader::decode(&raw, h.cap_offset as usize).unwrap().next as usize;
    assert!(next > raw.len());
    d.clear_faults();
    d.inject(Fault::MalformedCapChain {
        target: InfoTarget::Region(9),
        kind: CapChainFault::BogusCxlCapSize,
    });
    let raw = d.region_info(9).unwrap();
    assert_eq!(raw.len(), REGION_INFO_SIZE + 40);
    d.clear_faults();
    // Other regions are untouched.
    let raw = d.region_info(10).unwrap();
    let h = RegionInfoHeader::decode(&raw).unwrap();
    assert_eq!(
        CapHeader::decode(&raw, h.cap_offset as usize).unwrap().next,
        0
    );
}

#[test]
fn region_size_override_only_changes_the_answer() {
    let d = dev(UapiRevision::V2);
    d.inject(Fault::RegionSize {
        index: 10,
        size: 0x22E,
    });
    let raw = d.region_info(10).unwrap();
    assert_eq!(RegionInfoHeader::decode(&raw).unwrap().size, 0x22E);
    let comp = d.region_offset(10).unwrap();
    assert_eq!(rd32(&d, comp, 0x22C), 0);
    d.inject(Fault::RegionSize {
        index: 9,
        size: u64::MAX,
    });
    let raw = d.region_info(9).unwrap();
    assert_eq!(RegionInfoHeader::decode(&raw).unwrap().size, u64::MAX);
}

#[test]
fn no_cxl_cap() {
    let d = dev(UapiRevision::V3);
    d.inject(Fault::NoCxlCap);
    let raw = d.device_info().unwrap();
    let h = DeviceInfoHeader::decode(&raw).unwrap();
    assert!(h.flags & DEVICE_FLAGS_CXL != 0);
    assert_eq!(h.cap_offset, 0);
    assert_eq!(raw.len(), DEVICE_INFO_SIZE);
}

#[test]
fn reset_fails_is_one_shot_and_reported() {
    let d = dev(UapiRevision::V2);
    d.inject(Fault::ResetFails);
    let e = d.reset(ResetKind::Device).unwrap_err();
    assert!(matches!(e, BackendError::Io { .. }));
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    assert!(!d.dpa_active());
    d.reset(ResetKind::Device).unwrap();
    assert!(d.dpa_active());
}

#[test]
fn closed_device_is_enodev() {
    let d = dev(UapiRevision::V2);
    d.close();
    assert_eq!(
        d.device_info().unwrap_err().raw_os_error(),
        Some(libc::ENODEV)
    );
    assert_eq!(d.ioctl_reset().unwrap_err().0, libc::ENODEV);
    d.open().unwrap();
    assert!(d.device_info().is_ok());
}
