//! The COMP_REGS overlay against the simulator under hostile guest access patterns:
//! the locked decoder never changes, nothing outside COMP_REGS reaches the backend,
//! every backend fault reads all-ones / drops the write, nothing panics.
#![allow(clippy::unwrap_used)]

mod runtime_common;

use cxl_passthrough::backend::sim::{Fault, OffsetLayout, Op};
use cxl_passthrough::regs::hdm::DecoderReg;
use cxl_passthrough::uapi::UapiRevision;
use proptest::prelude::*;
use runtime_common::*;

fn shadow_decoder0(s: &cxl_passthrough::backend::sim::SimDevice, rev: UapiRevision) -> Vec<u32> {
    // Region offset of the HDM block: v2 region starts at CM (block + 0x1000).
    let hdm_region = if rev == UapiRevision::V2 {
        0x200
    } else {
        0x1200
    };
    DecoderReg::ALL
        .iter()
        .map(|r| s.shadow_dword(hdm_region + r.at(0)).unwrap())
        .collect()
}

#[derive(Debug, Clone)]
enum Access {
    Read(u64, usize),
    Write(u64, Vec<u8>),
}

fn access() -> impl Strategy<Value = Access> {
    let offset = prop_oneof![
        0x1200u64..0x1240,  // HDM capability, global control, decoder 0
        0x1000u64..0x1300,  // CM area
        0u64..0x10000,      // anywhere in the block
        0xFFF0u64..0x10010, // the end and beyond
        any::<u64>(),       // hostile
    ];
    let len = prop_oneof![Just(1usize), Just(2), Just(4), Just(8), 0usize..17];
    prop_oneof![
        (offset.clone(), len.clone()).prop_map(|(o, l)| Access::Read(o, l)),
        (offset, prop::collection::vec(any::<u8>(), 0..17)).prop_map(|(o, d)| Access::Write(o, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn hostile_sequences_never_move_the_locked_decoder(
        v3 in any::<bool>(), seq in prop::collection::vec(access(), 1..200)
    ) {
        let rev = if v3 { UapiRevision::V3 } else { UapiRevision::V2 };
        let s = sim(rev, BAR_LAYOUTS[0], OffsetLayout::Kernel);
        let (dev, _) = device(s.clone());
        dev.boot().unwrap();
        let locked = shadow_decoder0(&s, rev);
        let ov = dev.overlay();
        for a in &seq {
            match a {
                Access::Read(o, l) => {
                    let mut b = vec![0u8; *l];
                    ov.read(*o, &mut b);
                }
                Access::Write(o, d) => ov.write(*o, d),
            }
        }
        prop_assert_eq!(shadow_decoder0(&s, rev), locked);
        let d = dev.decoder0().unwrap();
        prop_assert!(d.committed && d.locked && d.base == WINDOW_BASE);
        prop_assert!(d.hdm_enabled, "HDM Decoder Enable cleared by the guest");
    }
}

/// A guest that clears HDM Decoder Enable (Global Control, HDM block + 4) in any way a
/// driver could write it leaves decoding enabled; Poison On Decode Error Enable is the
/// guest's to change. (Before the fix, every one of these writes disabled decoding.)
#[test]
fn guest_cannot_disable_hdm_decoding() {
    for rev in REVISIONS {
        let s = sim(rev, BAR_LAYOUTS[0], OffsetLayout::Kernel);
        let (dev, _) = device(s.clone());
        dev.boot().unwrap();
        let ov = dev.overlay();
        ov.write(0x1204, &0u32.to_le_bytes());
        assert!(dev.decoder0().unwrap().hdm_enabled, "{rev:?} dword");
        ov.write(0x1200, &0u64.to_le_bytes());
        assert!(dev.decoder0().unwrap().hdm_enabled, "{rev:?} qword");
        ov.write(0x1204, &1u32.to_le_bytes());
        let mut b = [0u8; 4];
        ov.read(0x1204, &mut b);
        let gc = u32::from_le_bytes(b);
        assert_eq!(gc & 0b10, 0b10, "{rev:?}: enable kept");
    }
}

#[test]
fn accesses_outside_comp_regs_never_reach_the_backend() {
    for rev in REVISIONS {
        let s = sim(rev, BAR_LAYOUTS[0], OffsetLayout::Kernel);
        let (dev, _) = device(s.clone());
        dev.boot().unwrap();
        let ov = dev.overlay();
        let before = s.stats();
        // Unaligned, odd-sized and out-of-block accesses.
        for (o, l) in [
            (0x1001u64, 4usize),
            (0x1002, 8),
            (0x1000, 3),
            (0x10000, 4),
            (u64::MAX - 3, 4),
            (0xFFFC, 8),
        ] {
            let mut b = vec![0u8; l];
            ov.read(o, &mut b);
            assert!(b.iter().all(|&x| x == 0xFF), "{rev:?} {o:#x}/{l}");
            ov.write(o, &b);
        }
        // v2: the CXL.io part below the region reads 0 without a backend access.
        if rev == UapiRevision::V2 {
            let mut b = [0xAAu8; 4];
            ov.read(0x0800, &mut b);
            assert_eq!(b, [0; 4]);
            ov.write(0x0800, &[1, 2, 3, 4]);
        }
        let after = s.stats();
        assert_eq!(after.comp_regs_reads, before.comp_regs_reads, "{rev:?}");
        assert_eq!(after.comp_regs_writes, before.comp_regs_writes, "{rev:?}");
    }
}

#[test]
fn backend_faults_read_all_ones_and_drop_writes() {
    for rev in REVISIONS {
        let s = sim(rev, BAR_LAYOUTS[0], OffsetLayout::Kernel);
        let (dev, _) = device(s.clone());
        dev.boot().unwrap();
        let ov = dev.overlay();
        let gc_off = 0x1204;
        let mut gc = [0u8; 4];
        ov.read(gc_off, &mut gc);
        for f in [
            Fault::Eio {
                op: Op::Read,
                count: Some(1),
            },
            Fault::Errno {
                op: Op::Read,
                errno: libc::EINVAL,
                count: Some(1),
            },
            Fault::ShortRead,
        ] {
            s.inject(f);
            let mut b = [0u8; 4];
            ov.read(0x1000, &mut b);
            assert_eq!(b, [0xFF; 4], "{rev:?} {f:?}");
            s.clear_faults();
        }
        s.inject(Fault::Eio {
            op: Op::Write,
            count: Some(1),
        });
        ov.write(gc_off, &0u32.to_le_bytes());
        s.clear_faults();
        if rev == UapiRevision::V4 {
            // v4's HDM block is the VMM's own view (no backend write to fail); a write
            // the overlay forwards to the BAR (CXL.cache/mem area, outside the HDM
            // block) meets the fault instead.
            s.inject(Fault::Eio {
                op: Op::Write,
                count: Some(1),
            });
            ov.write(0x1100, &0u32.to_le_bytes());
            s.clear_faults();
        }
        let mut now = [0u8; 4];
        ov.read(gc_off, &mut now);
        assert_eq!(now, gc, "{rev:?}: failed write changed the register");
        assert!(ov.stats.errors.load(std::sync::atomic::Ordering::Relaxed) >= 4);
        // Healthy again afterwards.
        let mut b = [0u8; 4];
        ov.read(0x1000, &mut b);
        assert_eq!(
            u32::from_le_bytes(b) & 0xFFFF,
            1,
            "{rev:?}: CXL capability header"
        );
    }
}
