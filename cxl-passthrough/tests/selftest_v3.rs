//! The v3 kernel selftest ("[PATCH v3 09/11]", spec §9.2) reproduced against the
//! simulator, plus the simulator-derived v3 checks of §9.3.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, Prot, SimDevice};
use cxl_passthrough::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, off};
use cxl_passthrough::regs::pci::find_dvsec;
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::uapi::wire::*;
use sim_common::*;

const COMMIT: u32 = 1 << 9;
const COMMITTED: u32 = 1 << 10;
const LOCK: u32 = 1 << 8;

struct V3 {
    dev: SimDevice,
    cap: CxlCapV3,
    cap_hdr: CapHeader,
    hdm: RegionInfoHeader,
    comp: RegionInfoHeader,
}

fn setup(t: BarLayout) -> V3 {
    let dev = device(UapiRevision::V3, t);
    let fx = Fixture::new(&dev);
    let cap = fx.v3();
    let cap_hdr = CapHeader::decode(&fx.raw, fx.cap_off).unwrap();
    let (hdm, _) = region(&dev, cap.hdm_region_idx);
    let (comp, _) = region(&dev, cap.comp_reg_region_idx);
    V3 {
        dev,
        cap,
        cap_hdr,
        hdm,
        comp,
    }
}

/// The selftest's walk at +0x1000: HDM offset = 0x1000 + pointer.
fn hdm_offset(f: &V3) -> u64 {
    let b = f.comp.offset;
    let hdr = rd32(&f.dev, b, 0x1000);
    let n = u64::from(hdr >> 24);
    (1..=n)
        .map(|i| rd32(&f.dev, b, 0x1000 + 4 * i))
        .find(|e| e & 0xFFFF == 5)
        .map(|e| 0x1000 + u64::from(e >> 20))
        .expect("HDM entry")
}

#[test]
fn device_is_cxl() {
    for t in BAR_LAYOUTS {
        let f = setup(t);
        assert_eq!((f.cap_hdr.id, f.cap_hdr.version), (6, 1));
        assert_ne!(f.cap.hdm_region_idx, f.cap.comp_reg_region_idx);
        assert!(f.cap.hdm_region_idx >= 9 && f.cap.comp_reg_region_idx >= 9);
        assert!(f.cap.comp_reg_bar < 6);
        assert!(f.cap.comp_reg_size > 0);
        assert_eq!(f.cap.comp_reg_size, f.comp.size);
        // v3 specifics: COMP_REGS registered first, block offset (not +0x1000), size 64 KiB.
        assert_eq!((f.cap.comp_reg_region_idx, f.cap.hdm_region_idx), (9, 10));
        assert_eq!(f.cap.comp_reg_offset, f.dev.config().component_offset());
        assert_eq!(f.cap.comp_reg_size, 0x10000);
        assert_eq!(f.cap.flags, CXL_V3_HOST_FIRMWARE_COMMITTED);
        assert_eq!((f.cap.resv, f.cap.pad), (0, 0));
    }
}

#[test]
fn hdm_region_mmap_rw() {
    let f = setup(BarLayout::End);
    assert!(f.hdm.size >= 4096);
    let m = f.dev.mmap(f.hdm.offset, 4096, Prot::ReadWrite).unwrap();
    m.write_u32(0, 0xDEAD_BEEF).unwrap();
    assert_eq!(m.read_u32(0).unwrap(), 0xDEAD_BEEF);
    drop(m);
    let mut b = [0u8; 4];
    f.dev.dpa_host_read(0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 0xDEAD_BEEF);
}

#[test]
fn component_bar_sparse_mmap() {
    for t in BAR_LAYOUTS {
        let f = setup(t);
        let (h, raw) = region(&f.dev, f.cap.comp_reg_bar);
        assert!(h.flags & REGION_FLAG_CAPS != 0);
        let areas = sparse_areas(&raw, h.cap_offset).expect("SPARSE_MMAP");
        assert!(!areas.is_empty());
        let (lo, hi) = (
            f.cap.comp_reg_offset,
            f.cap.comp_reg_offset + f.cap.comp_reg_size,
        );
        for a in &areas {
            assert!(a.offset + a.size <= lo || a.offset >= hi, "{t:?} {a:?}");
            // Areas are mappable for real and show the BAR's device registers.
            let m = f.dev.mmap(h.offset + a.offset, 4096, Prot::Read).unwrap();
            let bar = f.cap.comp_reg_bar as u8;
            assert_eq!(m.read_u32(0).unwrap(), SimDevice::bar_marker(bar, a.offset));
        }
    }
}

#[test]
fn comp_regs_cm_cap_array_read() {
    let f = setup(BarLayout::End);
    let mut b = [0u8; 4];
    assert_eq!(f.dev.pread(f.comp.offset + 0x1000, &mut b), Ok(4));
    let v = u32::from_le_bytes(b);
    assert_eq!(v & 0xFFFF, 1);
    assert!(v >> 24 > 0);
}

#[test]
fn dvsec_lock_byte_read() {
    let f = setup(BarLayout::End);
    let read = |o: u16| Ok::<_, ()>(cfg32(&f.dev, u64::from(o)));
    let d = find_dvsec(read, CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE)
        .unwrap()
        .unwrap();
    let b = cfg_read::<1>(&f.dev, u64::from(d.offset + off::LOCK)).unwrap();
    assert_eq!(b[0] & 1, 0);
}

#[test]
fn hdm_decoder_commit_fsm() {
    let f = setup(BarLayout::End);
    let (b, ctrl) = (f.comp.offset, hdm_offset(&f) + 0x20);
    assert_eq!(hdm_offset(&f), 0x1200);
    let orig = rd32(&f.dev, b, ctrl);
    assert_eq!(orig & (COMMIT | COMMITTED), COMMIT | COMMITTED);
    // Firmware snapshot: host HPA in BASE, LOCK_ON_COMMIT kept (no v2-style zeroing).
    let base =
        (u64::from(rd32(&f.dev, b, ctrl - 0x0C)) << 32) | u64::from(rd32(&f.dev, b, ctrl - 0x10));
    assert_eq!(base, f.dev.config().host_hpa);
    assert!(orig & LOCK != 0);
    wr32(&f.dev, b, ctrl, orig & !COMMIT);
    assert_eq!(rd32(&f.dev, b, ctrl) & (COMMIT | COMMITTED | LOCK), 0);
    wr32(&f.dev, b, ctrl, COMMIT);
    assert_eq!(
        rd32(&f.dev, b, ctrl) & (COMMIT | COMMITTED),
        COMMIT | COMMITTED
    );
    wr32(&f.dev, b, ctrl, orig);
    // Observed in code: the restore lands while COMMITTED=1, only COMMIT is honoured.
    assert_eq!(rd32(&f.dev, b, ctrl), 0x600);
    // ... and it stays that way across close/reopen (shadow owned by CXL core).
    f.dev.close();
    f.dev.open().unwrap();
    assert_eq!(rd32(&f.dev, b, ctrl), 0x600);
}

// ---- §9.3 simulator-derived v3 checks ----

#[test]
fn sim_comp_regs_multi_dword_access() {
    let f = setup(BarLayout::End);
    let mut b = [0u8; 8];
    assert_eq!(f.dev.pread(f.comp.offset + 0x1000, &mut b), Ok(8));
    assert_eq!(u32::from_le_bytes(b[..4].try_into().unwrap()), 0x0211_0001);
    assert_eq!(u32::from_le_bytes(b[4..].try_into().unwrap()), 0x1002_0002);
    // Whole region in one read.
    let mut all = vec![0u8; 0x10000];
    assert_eq!(f.dev.pread(f.comp.offset, &mut all), Ok(0x10000));
    // Misaligned or non-multiple-of-4, and no clamping past the end.
    let mut b = [0u8; 6];
    assert_eq!(
        f.dev.pread(f.comp.offset + 0x1000, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    let mut b = [0u8; 4];
    assert_eq!(
        f.dev.pread(f.comp.offset + 0x1002, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    let mut b = [0u8; 8];
    assert_eq!(
        f.dev.pread(f.comp.offset + 0xFFFC, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    assert_eq!(f.dev.pread(f.comp.offset + 0x10000, &mut []), Ok(0));
}

#[test]
fn sim_comp_regs_low_page_reads_zero() {
    let f = setup(BarLayout::End);
    let mut b = vec![0xFFu8; 0x1000];
    assert_eq!(f.dev.pread(f.comp.offset, &mut b), Ok(0x1000));
    assert!(b.iter().all(|&x| x == 0));
    // Writes there and into the cap array are dropped.
    wr32(&f.dev, f.comp.offset, 0x10, 0xFFFF_FFFF);
    wr32(&f.dev, f.comp.offset, 0x1000, 0);
    assert_eq!(rd32(&f.dev, f.comp.offset, 0x10), 0);
    assert_eq!(rd32(&f.dev, f.comp.offset, 0x1000), 0x0211_0001);
    // Past the HDM block reads 0.
    assert_eq!(rd32(&f.dev, f.comp.offset, 0x1230), 0);
}

#[test]
fn sim_raw_bar_access_into_block_is_einval() {
    for t in BAR_LAYOUTS {
        let f = setup(t);
        let (bar, _) = region(&f.dev, f.cap.comp_reg_bar);
        let mut b = [0u8; 4];
        let at = bar.offset + f.cap.comp_reg_offset + 0x1000;
        assert_eq!(f.dev.pread(at, &mut b).unwrap_err().0, libc::EINVAL);
        assert_eq!(f.dev.pwrite(at, &b).unwrap_err().0, libc::EINVAL);
        // Outside the block the BAR is ordinary registers.
        let outside = if f.cap.comp_reg_offset == 0 {
            0x10000
        } else {
            0
        };
        assert_eq!(f.dev.pread(bar.offset + outside, &mut b), Ok(4));
        assert_eq!(
            u32::from_le_bytes(b),
            SimDevice::bar_marker(f.cap.comp_reg_bar as u8, outside)
        );
    }
}

#[test]
fn sim_shadow_writes_survive_close_reopen() {
    let f = setup(BarLayout::End);
    let b = f.comp.offset;
    let ctrl = 0x1220;
    wr32(&f.dev, b, ctrl, 0);
    wr32(&f.dev, b, 0x1210, 0x2000_0000);
    wr32(&f.dev, b, 0x1204, 0x3);
    f.dev.close();
    let mut x = [0u8; 4];
    assert_eq!(f.dev.pread(b + 0x1210, &mut x).unwrap_err().0, libc::ENODEV);
    f.dev.open().unwrap();
    assert_eq!(rd32(&f.dev, b, 0x1210), 0x2000_0000);
    assert_eq!(rd32(&f.dev, b, 0x1204), 0x3);
    assert_eq!(rd32(&f.dev, b, ctrl), 0);
    // And a reset leaves the stale shadow alone, hardware is unaffected by the shadow.
    f.dev.ioctl_reset().unwrap();
    assert_eq!(rd32(&f.dev, b, 0x1210), 0x2000_0000);
    assert_eq!(f.dev.hw_decoder(0).unwrap()[4] & COMMITTED, COMMITTED);
}

#[test]
fn sim_hdm_rw_no_clamp_and_no_reset_gate() {
    let f = setup(BarLayout::End);
    let mut b = [0u8; 8];
    assert_eq!(
        f.dev
            .pread(f.hdm.offset + f.hdm.size - 4, &mut b)
            .unwrap_err()
            .0,
        libc::EINVAL
    );
    assert_eq!(f.dev.pread(f.hdm.offset + f.hdm.size, &mut []), Ok(0));
    assert_eq!(f.dev.pwrite(f.hdm.offset + 8, &[9; 8]), Ok(8));
    let m = f.dev.mmap(f.hdm.offset, 4096, Prot::ReadWrite).unwrap();
    f.dev.ioctl_reset().unwrap();
    // v3 has no zap: the mapping and fd access keep working across reset.
    let mut p = [0u8; 8];
    m.probe_read(8, &mut p).unwrap();
    assert_eq!(p, [9; 8]);
    assert_eq!(f.dev.pread(f.hdm.offset + 8, &mut p), Ok(8));
}
