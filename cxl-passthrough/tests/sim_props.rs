//! Property tests of the simulator's register and access rules.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, SimConfig, SimDevice};
use cxl_passthrough::uapi::UapiRevision;
use proptest::prelude::*;
use sim_common::*;

const LOCK: u32 = 1 << 8;
const COMMIT: u32 = 1 << 9;
const COMMITTED: u32 = 1 << 10;

/// Decoder-0 register offsets (relative to the HDM block) and interesting values.
fn dword_write() -> impl Strategy<Value = (u64, u32)> {
    (
        prop::sample::select(vec![
            0x0u64, 0x4, 0x8, 0xC, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x2C,
        ]),
        prop_oneof![
            any::<u32>(),
            Just(COMMIT | LOCK),
            Just(COMMIT),
            Just(0),
            Just(LOCK),
            Just(0x2000_0000),
        ],
    )
}

fn decoder(dev: &SimDevice, base: u64, hdm: u64) -> [u32; 5] {
    [0x10, 0x14, 0x18, 0x1C, 0x20].map(|o| rd32(dev, base, hdm + o))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn v2_hdm_rules(writes in prop::collection::vec(dword_write(), 1..40)) {
        let dev = device(UapiRevision::V2, BarLayout::End);
        let comp = dev.region_offset(10).unwrap();
        let hw = dev.hw_decoder(0);
        let cap = rd32(&dev, comp, 0x200);
        for (off, v) in writes {
            let before = decoder(&dev, comp, 0x200);
            wr32(&dev, comp, 0x200 + off, v);
            let after = decoder(&dev, comp, 0x200);
            let (cb, ca) = (before[4], after[4]);
            if cb & LOCK != 0 {
                // Locked: BASE/SIZE frozen; CTRL only loses LOCK on a LOCK=0 write.
                prop_assert_eq!(&before[..4], &after[..4]);
                if off == 0x20 && v & LOCK == 0 {
                    prop_assert_eq!(ca, cb & !LOCK);
                } else {
                    prop_assert_eq!(ca, cb);
                }
            } else if off == 0x20 {
                prop_assert_eq!(ca & COMMITTED != 0, ca & COMMIT != 0);
                prop_assert_eq!(ca & COMMIT, v & COMMIT);
                // Error-not-committed and target type keep their value.
                prop_assert_eq!(ca & (3 << 11), cb & (3 << 11));
            }
            // Reserved CTRL bits, BASE/SIZE LO bits 27:0 and Global Control 31:1 stay 0
            // (poison is not capable here).
            // (bits 14 and 27:24 too: the device is not UIO capable).
            prop_assert_eq!(ca & 0xFFFF_C000, 0);
            prop_assert_eq!(after[0] & 0x0FFF_FFFF, 0);
            prop_assert_eq!(after[2] & 0x0FFF_FFFF, 0);
            prop_assert_eq!(rd32(&dev, comp, 0x204) & !0b10, 0);
            // The capability register is read-only.
            prop_assert_eq!(rd32(&dev, comp, 0x200), cap);
        }
        // Hardware is never reprogrammed through COMP_REGS.
        prop_assert_eq!(dev.hw_decoder(0), hw);
    }

    #[test]
    fn v3_commit_fsm(writes in prop::collection::vec(dword_write(), 1..40)) {
        let dev = device(UapiRevision::V3, BarLayout::End);
        let comp = dev.region_offset(9).unwrap();
        let hw = dev.hw_decoder(0);
        for (off, v) in writes {
            let before = decoder(&dev, comp, 0x1200);
            wr32(&dev, comp, 0x1200 + off, v);
            let after = decoder(&dev, comp, 0x1200);
            let (cb, ca) = (before[4], after[4]);
            if off == 0x20 {
                // After any CTRL write, COMMIT and COMMITTED both equal the written COMMIT.
                prop_assert_eq!(ca & COMMIT, v & COMMIT);
                prop_assert_eq!(ca & COMMITTED != 0, v & COMMIT != 0);
                prop_assert_eq!(ca & (1 << 11), 0);
                if cb & COMMITTED != 0 {
                    let keep = !(COMMIT | COMMITTED | LOCK);
                    prop_assert_eq!(ca & keep, cb & keep, "only COMMIT honoured");
                    if v & COMMIT != 0 {
                        prop_assert_eq!(ca, cb);
                    }
                }
            } else if (0x10..0x20).contains(&off) {
                if cb & (COMMITTED | LOCK) != 0 {
                    prop_assert_eq!(&before[..4], &after[..4]);
                } else {
                    prop_assert_eq!(after[((off - 0x10) / 4) as usize], v, "stored verbatim");
                }
            }
        }
        prop_assert_eq!(dev.hw_decoder(0), hw);
    }

    #[test]
    fn v2_comp_regs_access_rules(pos in 0u64..0x240, len in 0usize..12) {
        let dev = device(UapiRevision::V2, BarLayout::End);
        let comp = dev.region_offset(10).unwrap();
        let size = 0x230u64;
        let mut b = vec![0u8; len];
        let r = dev.pread(comp + pos, &mut b);
        let clamped = (len as u64).min(size.saturating_sub(pos));
        let want = if len == 0 {
            Ok(0)
        } else if pos >= size || clamped != 4 || pos % 4 != 0 {
            Err(libc::EINVAL)
        } else {
            Ok(4)
        };
        prop_assert_eq!(r.map_err(|e| e.0), want);
    }

    #[test]
    fn v3_comp_regs_access_rules(pos in 0u64..0x10010, len in 0usize..20) {
        let dev = device(UapiRevision::V3, BarLayout::End);
        let comp = dev.region_offset(9).unwrap();
        let mut b = vec![0u8; len];
        let r = dev.pread(comp + pos, &mut b);
        let ok = pos % 4 == 0 && len % 4 == 0 && pos + len as u64 <= 0x10000;
        prop_assert_eq!(r.map_err(|e| e.0), if ok { Ok(len) } else { Err(libc::EINVAL) });
    }

    #[test]
    fn v4_comp_regs_access_rules(pos in 0u64..0x40, len in 0usize..0x40) {
        let dev = device(UapiRevision::V4, BarLayout::End);
        let comp = dev.region_offset(10).unwrap();
        let mut b = vec![0u8; len];
        let r = dev.pread(comp + pos, &mut b);
        // Alignment first, then pos < size (0x30), then the count is clamped.
        let want = if len == 0 {
            Ok(0)
        } else if pos % 4 != 0 || len % 4 != 0 || pos >= 0x30 {
            Err(libc::EINVAL)
        } else {
            Ok(len.min(0x30 - pos as usize))
        };
        prop_assert_eq!(r.map_err(|e| e.0), want);
        // Writes answer the same and change nothing.
        let before = dev.hw_hdm();
        prop_assert_eq!(dev.pwrite(comp + pos, &vec![0xA5; len]).map_err(|e| e.0), want);
        prop_assert_eq!(dev.hw_hdm(), before);
    }

    #[test]
    fn config_writes_keep_ids_and_consistent_reads(
        writes in prop::collection::vec((0u64..0x160, prop::sample::select(vec![1usize, 2, 4]), any::<u32>()), 1..30),
        rev in prop::sample::select(UapiRevision::ALL.to_vec()),
    ) {
        let dev = device(rev, BarLayout::Middle);
        let ids = cfg32(&dev, 0);
        let class = cfg32(&dev, 8);
        for (off, w, v) in writes {
            let off = off - off % w as u64;
            cfg_write(&dev, off, &v.to_le_bytes()[..w]);
            prop_assert_eq!(cfg32(&dev, 0), ids);
            prop_assert_eq!(cfg32(&dev, 8), class);
        }
        for o in (0x100u64..0x160).step_by(2) {
            let word = cfg16(&dev, o).to_le_bytes();
            let b0 = cfg_read::<1>(&dev, o).unwrap()[0];
            let b1 = cfg_read::<1>(&dev, o + 1).unwrap()[0];
            prop_assert_eq!(word, [b0, b1]);
        }
    }

    #[test]
    fn dpa_rw_matches_a_flat_model(
        ops in prop::collection::vec((0u64..(1 << 20), prop::collection::vec(any::<u8>(), 1..64)), 1..20),
        rev in prop::sample::select(UapiRevision::ALL.to_vec()),
    ) {
        let dev = SimDevice::new(SimConfig { dpa_size: 256 << 20, ..SimConfig::new(rev) }).unwrap();
        let dpa = dev.region_offset(if rev == UapiRevision::V3 { 10 } else { 9 }).unwrap();
        if rev == UapiRevision::V4 {
            // v4 serves device memory only with (virtual) Memory Space enabled.
            let cmd = cfg16(&dev, 4) | 2;
            cfg_write(&dev, 4, &cmd.to_le_bytes());
        }
        let mut model = std::collections::BTreeMap::new();
        for (off, data) in &ops {
            prop_assert_eq!(dev.pwrite(dpa + off, data), Ok(data.len()));
            for (i, b) in data.iter().enumerate() {
                model.insert(off + i as u64, *b);
            }
        }
        dev.ioctl_reset().unwrap();
        if rev == UapiRevision::V4 {
            // v4's reset is a CXL reset: device memory is cleared.
            model.values_mut().for_each(|b| *b = 0);
        }
        for (off, data) in &ops {
            let mut got = vec![0u8; data.len()];
            prop_assert_eq!(dev.pread(dpa + off, &mut got), Ok(data.len()));
            let want: Vec<u8> = (0..data.len() as u64).map(|i| model[&(off + i)]).collect();
            prop_assert_eq!(got, want);
        }
    }
}
