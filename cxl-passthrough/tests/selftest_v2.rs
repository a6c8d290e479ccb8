//! The v2 kernel selftest (`vfio_cxl_type2_test`, spec §9.1) reproduced against the
//! simulator, plus the simulator-derived v2 checks of §9.3. Answers are decoded with
//! `uapi::wire` only, as the selftest does.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, Prot, SimConfig, SimDevice};
use cxl_passthrough::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, off};
use cxl_passthrough::regs::pci::find_dvsec;
use cxl_passthrough::regs::{HdmLocation, find_hdm_block};
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::uapi::wire::*;
use sim_common::*;

const SIZE_MASK: u32 = 0xF000_0000;

/// The selftest fixture: CAP_CXL, region infos, the §3.1 walk.
struct V2 {
    dev: SimDevice,
    cap: CxlCapV2,
    cap_hdr: CapHeader,
    flags: u32,
    dpa: RegionInfoHeader,
    comp: RegionInfoHeader,
    hdm: HdmLocation,
}

fn setup_cfg(cfg: SimConfig) -> V2 {
    let dev = SimDevice::new(cfg).unwrap();
    let fx = Fixture::new(&dev);
    let cap = fx.v2();
    let cap_hdr = CapHeader::decode(&fx.raw, fx.cap_off).unwrap();
    let (dpa, _) = region(&dev, cap.dpa_region_index);
    let (comp, _) = region(&dev, cap.comp_regs_region_index);
    let base = comp.offset;
    let hdm = find_hdm_block(|o| Ok::<_, ()>(rd32(&dev, base, o)), 0, comp.size).unwrap();
    V2 {
        flags: fx.info.flags,
        dev,
        cap,
        cap_hdr,
        dpa,
        comp,
        hdm,
    }
}

fn setup(t: BarLayout) -> V2 {
    setup_cfg(SimConfig {
        bar_layout: t,
        ..SimConfig::new(UapiRevision::V2)
    })
}

fn ctrl_off(f: &V2) -> u64 {
    f.hdm.offset + 0x20
}

#[test]
fn device_flags() {
    let f = setup(BarLayout::End);
    let want = DEVICE_FLAGS_CXL | DEVICE_FLAGS_PCI | DEVICE_FLAGS_CAPS;
    assert_eq!(f.flags & want, want);
}

#[test]
fn cxl_cap_fields() {
    for t in BAR_LAYOUTS {
        let f = setup(t);
        assert_eq!((f.cap_hdr.id, f.cap_hdr.version), (6, 1));
        assert!(f.hdm.decoder_count > 0);
        assert!(f.comp.size > 0 && f.comp.size.is_multiple_of(4));
        assert!(f.hdm.offset > 0 && f.hdm.offset < f.comp.size && f.hdm.offset.is_multiple_of(4));
        assert_ne!(f.cap.dpa_region_index, !0);
        assert_ne!(f.cap.comp_regs_region_index, !0);
        assert_ne!(f.cap.dpa_region_index, f.cap.comp_regs_region_index);
        assert!(f.cap.flags & CXL_V2_FIRMWARE_COMMITTED != 0);
        assert!(f.dpa.size > 0);
        // §3.1 step 4 and the spec §3.4 synthetic example.
        assert_eq!(f.comp.size, f.hdm.offset + f.hdm.block_size());
        assert_eq!((f.hdm.offset, f.comp.size), (0x200, 0x230));
        assert_eq!(
            f.cap.hdm_regs_offset,
            f.dev.config().component_offset() + 0x1000
        );
        assert_eq!(f.cap.hdm_regs_bar_index, 2);
        assert_eq!(f.cap.reserved, [0; 3]);
        assert!(f.cap.flags & CXL_V2_CACHE_CAPABLE != 0);
    }
}

#[test]
fn component_bar_sparse_mmap() {
    for t in BAR_LAYOUTS {
        let f = setup(t);
        let bar = u32::from(f.cap.hdm_regs_bar_index);
        // First call with the bare struct: argsz grows, no capability copied.
        let mut small = [0u8; REGION_INFO_SIZE];
        small[..4].copy_from_slice(&(REGION_INFO_SIZE as u32).to_le_bytes());
        small[8..12].copy_from_slice(&bar.to_le_bytes());
        f.dev.ioctl_region_info(&mut small).unwrap();
        let first = RegionInfoHeader::decode(&small).unwrap();
        assert!(first.argsz as usize > REGION_INFO_SIZE);
        assert_eq!(first.cap_offset, 0);
        assert!(first.flags & REGION_FLAG_CAPS != 0);
        let (h, raw) = region(&f.dev, bar);
        assert!(h.size > 0);
        let rwm = REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP;
        assert_eq!(h.flags & rwm, rwm);
        let areas = sparse_areas(&raw, h.cap_offset).expect("SPARSE_MMAP cap");
        assert!((1..=2).contains(&areas.len()));
        let hro = f.cap.hdm_regs_offset;
        assert!(hro >= 0x1000);
        let mut total = 0;
        for a in &areas {
            assert!(a.size > 0 && a.offset + a.size <= h.size);
            assert!(!(a.offset..a.offset + a.size).contains(&hro));
            total += a.size;
        }
        assert!(total < h.size);
        // Exact v2 carve (§6.3).
        let (co, ce) = (hro - 0x1000, hro - 0x1000 + 0x10000);
        let want: Vec<SparseArea> = match t {
            BarLayout::End => vec![SparseArea {
                offset: 0,
                size: co,
            }],
            BarLayout::Start => vec![SparseArea {
                offset: ce,
                size: h.size - ce,
            }],
            _ => vec![
                SparseArea {
                    offset: 0,
                    size: co,
                },
                SparseArea {
                    offset: ce,
                    size: h.size - ce,
                },
            ],
        };
        assert_eq!(areas, want, "{t:?}");
    }
}

#[test]
fn dpa_region_info() {
    let f = setup(BarLayout::End);
    assert_eq!(f.dpa.size, f.dev.config().dpa_size);
    let rw = REGION_FLAG_READ | REGION_FLAG_WRITE;
    assert_eq!(f.dpa.flags & rw, rw);
    assert!(f.dpa.flags & REGION_FLAG_MMAP != 0);
    let (_, raw) = region(&f.dev, f.cap.dpa_region_index);
    let t = find_cap(&raw, f.dpa.cap_offset, REGION_CAP_TYPE).unwrap();
    assert_eq!(le32(&raw, t + 8), Some(REGION_TYPE_CXL));
    assert_eq!(le32(&raw, t + 12), Some(REGION_SUBTYPE_CXL_DPA));
}

#[test]
fn dpa_region_info_without_mmap_bos() {
    // BOS 7.0 withheld MMAP: READ|WRITE only, and mmap is refused (dpa_mmap_fault skips).
    let f = setup_cfg(SimConfig {
        dpa_mmap: false,
        ..SimConfig::new(UapiRevision::V2)
    });
    assert_eq!(
        f.dpa.flags & (REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP),
        3
    );
    assert_eq!(
        f.dev.mmap(f.dpa.offset, 4096, Prot::Read).unwrap_err().0,
        libc::EINVAL
    );
    assert_eq!(f.dev.pwrite(f.dpa.offset, &[1]), Ok(1));
}

#[test]
fn comp_regs_region_info() {
    let f = setup(BarLayout::End);
    assert_eq!(f.comp.size, f.hdm.offset + f.hdm.block_size());
    let rw = REGION_FLAG_READ | REGION_FLAG_WRITE;
    assert_eq!(f.comp.flags & rw, rw);
    assert_eq!(f.comp.flags & REGION_FLAG_MMAP, 0);
    let (_, raw) = region(&f.dev, f.cap.comp_regs_region_index);
    let t = find_cap(&raw, f.comp.cap_offset, REGION_CAP_TYPE).unwrap();
    assert_eq!(le32(&raw, t + 12), Some(REGION_SUBTYPE_CXL_COMP_REGS));
}

#[test]
fn dpa_mmap_fault() {
    let f = setup(BarLayout::End);
    let len = f.dpa.size.min(2 << 20) as usize;
    let m = f.dev.mmap(f.dpa.offset, len, Prot::ReadWrite).unwrap();
    let mut b = [0u8; 1];
    m.probe_read(0, &mut b).unwrap();
    m.probe_write(0, &[0xAB]).unwrap();
    m.probe_read(0, &mut b).unwrap();
    assert_eq!(b[0], 0xAB);
    // The device memory really holds it.
    let mut host = [0u8; 1];
    f.dev.dpa_host_read(0, &mut host).unwrap();
    assert_eq!(host[0], 0xAB);
}

#[test]
fn comp_regs_no_mmap() {
    let f = setup(BarLayout::End);
    let e = f.dev.mmap(f.comp.offset, f.comp.size as usize, Prot::Read);
    assert_eq!(e.unwrap_err().0, libc::EINVAL);
}

#[test]
fn comp_reg_mmap_blocked() {
    for t in BAR_LAYOUTS {
        let f = setup(t);
        let (bar, _) = region(&f.dev, u32::from(f.cap.hdm_regs_bar_index));
        assert!(bar.flags & REGION_FLAG_MMAP != 0);
        assert_eq!(f.cap.hdm_regs_offset % 4096, 0);
        let e = f
            .dev
            .mmap(bar.offset + f.cap.hdm_regs_offset, 4096, Prot::Read);
        assert_eq!(e.unwrap_err().0, libc::EINVAL, "{t:?}");
    }
}

#[test]
fn hdm_cap_read() {
    let f = setup(BarLayout::End);
    let hdmc = rd32(&f.dev, f.comp.offset, f.hdm.offset);
    assert_ne!(hdmc, !0);
    let field = hdmc & 0xF;
    let count = if field == 0 { 1 } else { 2 * field };
    assert_eq!(count, f.hdm.decoder_count);
}

fn commit_to_committed(f: &V2) {
    let b = f.comp.offset;
    let h = f.hdm.offset;
    let ctrl = rd32(&f.dev, b, ctrl_off(f));
    if ctrl & (1 << 10) != 0 {
        let base = (u64::from(rd32(&f.dev, b, h + 0x14)) << 32)
            | u64::from(rd32(&f.dev, b, h + 0x10) & SIZE_MASK);
        let size = (u64::from(rd32(&f.dev, b, h + 0x1C)) << 32)
            | u64::from(rd32(&f.dev, b, h + 0x18) & SIZE_MASK);
        assert_eq!(base, 0);
        assert!(size >= f.dpa.size);
        assert_eq!(ctrl & ((1 << 15) | 0xF000_0000), 0);
    } else {
        wr32(&f.dev, b, h + 0x10, 0x1000_0000);
        wr32(&f.dev, b, h + 0x14, 0);
        wr32(&f.dev, b, h + 0x18, 0x1000_0000);
        wr32(&f.dev, b, h + 0x1C, 0);
        wr32(&f.dev, b, ctrl_off(f), 1 << 9);
        assert!(rd32(&f.dev, b, ctrl_off(f)) & (1 << 10) != 0);
        wr32(&f.dev, b, ctrl_off(f), 0);
        assert_eq!(rd32(&f.dev, b, ctrl_off(f)) & (1 << 10), 0);
    }
}

#[test]
fn hdm_ctrl_commit_to_committed() {
    // Firmware-committed and locked: the shadow shows COMMITTED, BASE zeroed, LOCK clear.
    let f = setup(BarLayout::End);
    let ctrl = rd32(&f.dev, f.comp.offset, ctrl_off(&f));
    assert!(ctrl & (1 << 10) != 0 && ctrl & (1 << 8) == 0);
    commit_to_committed(&f);
    // Hardware cleared the decoder at the open-time reset: the else branch.
    let f = setup_cfg(SimConfig {
        post_reset_hw_committed: false,
        ..SimConfig::new(UapiRevision::V2)
    });
    assert_eq!(rd32(&f.dev, f.comp.offset, ctrl_off(&f)) & (1 << 10), 0);
    commit_to_committed(&f);
    // Hardware is never reprogrammed through COMP_REGS.
    assert_eq!(f.dev.hw_decoder(0).unwrap()[4], 0);
}

fn dvsec_lock_semantics_on(dev: &SimDevice) {
    let read = |o: u16| Ok::<_, ()>(cfg32(dev, u64::from(o)));
    let Some(d) = find_dvsec(read, CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE).unwrap() else {
        return;
    };
    let at = |r: u16| u64::from(d.offset + r);
    let lock = cfg16(dev, at(off::LOCK));
    let control = cfg16(dev, at(off::CONTROL));
    if lock & 1 != 0 {
        assert_eq!(lock & 0xFFFE, 0);
        cfg_write(dev, at(off::CONTROL), &(control ^ (1 << 2)).to_le_bytes());
        assert_eq!(cfg16(dev, at(off::CONTROL)), control);
    } else {
        cfg_write(dev, at(off::LOCK), &0xFFFEu16.to_le_bytes());
        let l = cfg16(dev, at(off::LOCK));
        assert_eq!(l & 0xFFFE, 0);
        assert_eq!(l & 1, 0);
        cfg_write(dev, at(off::LOCK), &1u16.to_le_bytes());
        assert_eq!(cfg16(dev, at(off::LOCK)) & 1, 1);
        let control = cfg16(dev, at(off::CONTROL));
        cfg_write(dev, at(off::CONTROL), &(control ^ 1).to_le_bytes());
        assert_eq!(cfg16(dev, at(off::CONTROL)), control);
    }
}

#[test]
fn dvsec_lock_semantics() {
    for locked in [false, true] {
        let dev = SimDevice::new(SimConfig {
            dvsec_config_locked: locked,
            ..SimConfig::new(UapiRevision::V2)
        })
        .unwrap();
        dvsec_lock_semantics_on(&dev);
        // The lock lives in the shadow: hardware is untouched.
        let mut hw = [0u8; 2];
        dev.hw_config_read(0x100 + off::LOCK, &mut hw);
        assert_eq!(u16::from_le_bytes(hw), u16::from(locked));
    }
}

// ---- §9.3 simulator-derived v2 checks ----

#[test]
fn sim_comp_regs_two_byte_access_is_einval() {
    let f = setup(BarLayout::End);
    let mut b = [0u8; 2];
    assert_eq!(
        f.dev.pread(f.comp.offset, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    assert_eq!(
        f.dev.pwrite(f.comp.offset + 0x220, &b).unwrap_err().0,
        libc::EINVAL
    );
    let mut b = [0u8; 1];
    assert_eq!(
        f.dev.pread(f.comp.offset, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    // 8 bytes mid-region fails, 8 bytes at the last dword is clamped to 4.
    let mut b = [0u8; 8];
    assert_eq!(
        f.dev.pread(f.comp.offset, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    assert_eq!(f.dev.pread(f.comp.offset + f.comp.size - 4, &mut b), Ok(4));
    // Misaligned dword.
    let mut b = [0u8; 4];
    assert_eq!(
        f.dev.pread(f.comp.offset + 2, &mut b).unwrap_err().0,
        libc::EINVAL
    );
    // Zero-length access returns 0.
    assert_eq!(f.dev.pread(f.comp.offset, &mut []), Ok(0));
}

#[test]
fn sim_comp_regs_pread_at_size_is_einval() {
    let f = setup(BarLayout::End);
    let mut b = [0u8; 4];
    assert_eq!(
        f.dev
            .pread(f.comp.offset + f.comp.size, &mut b)
            .unwrap_err()
            .0,
        libc::EINVAL
    );
    assert_eq!(
        f.dev.pwrite(f.comp.offset + f.comp.size, &b).unwrap_err().0,
        libc::EINVAL
    );
}

#[test]
fn sim_comp_regs_writes_below_hdm_are_dropped() {
    let f = setup(BarLayout::End);
    let before = rd32(&f.dev, f.comp.offset, 0);
    wr32(&f.dev, f.comp.offset, 0, 0xFFFF_FFFF);
    assert_eq!(rd32(&f.dev, f.comp.offset, 0), before);
    assert_eq!(before, 0x0211_0001);
    assert_eq!(rd32(&f.dev, f.comp.offset, 4), 0x1002_0002);
    assert_eq!(rd32(&f.dev, f.comp.offset, 8), 0x2001_0005);
}

#[test]
fn sim_dpa_pread_at_size_returns_zero() {
    let f = setup(BarLayout::End);
    let mut b = [0u8; 8];
    assert_eq!(f.dev.pread(f.dpa.offset + f.dpa.size, &mut b), Ok(0));
    assert_eq!(f.dev.pwrite(f.dpa.offset + f.dpa.size, &b), Ok(0));
    // Clamped at the end.
    assert_eq!(f.dev.pread(f.dpa.offset + f.dpa.size - 4, &mut b), Ok(4));
    assert_eq!(f.dev.pwrite(f.dpa.offset + 16, &[1, 2, 3]), Ok(3));
    let mut r = [0u8; 3];
    assert_eq!(f.dev.pread(f.dpa.offset + 16, &mut r), Ok(3));
    assert_eq!(r, [1, 2, 3]);
}

#[test]
fn sim_dpa_after_zap_without_recommit_is_eio_and_sigbus() {
    let f = setup_cfg(SimConfig {
        post_reset_hw_committed: false,
        reset_on_open: false,
        ..SimConfig::new(UapiRevision::V2)
    });
    assert_eq!(f.dev.pwrite(f.dpa.offset, &[0x5A]), Ok(1));
    let m = f.dev.mmap(f.dpa.offset, 4096, Prot::ReadWrite).unwrap();
    let mut b = [0u8; 1];
    m.probe_read(0, &mut b).unwrap();
    assert_eq!(b[0], 0x5A);
    f.dev.ioctl_reset().unwrap();
    // The hardware decoder is not committed after the reset: the region stays inactive.
    assert!(!f.dev.dpa_active());
    assert_eq!(f.dev.pread(f.dpa.offset, &mut b).unwrap_err().0, libc::EIO);
    assert_eq!(f.dev.pwrite(f.dpa.offset, &b).unwrap_err().0, libc::EIO);
    assert_eq!(
        m.probe_read(0, &mut b).unwrap_err().raw_os_error(),
        Some(libc::EFAULT)
    );
    // Guest re-commit through COMP_REGS does not reactivate (shadow only).
    let ctrl = f.hdm.offset + 0x20;
    wr32(&f.dev, f.comp.offset, ctrl, 1 << 9);
    assert!(!f.dev.dpa_active());
    // The data survived on the device.
    let mut host = [0u8; 1];
    f.dev.dpa_host_read(0, &mut host).unwrap();
    assert_eq!(host[0], 0x5A);
}

#[test]
fn sim_ctrl_lock_only_clear_preserves_committed() {
    let f = setup(BarLayout::End);
    let (b, c) = (f.comp.offset, ctrl_off(&f));
    // Lock it: COMMIT|LOCK at a guest base.
    wr32(&f.dev, b, f.hdm.offset + 0x10, 0x2000_0000);
    wr32(&f.dev, b, c, (1 << 9) | (1 << 8));
    let locked = rd32(&f.dev, b, c);
    assert_eq!(locked & 0x700, 0x700);
    // BASE is frozen while locked.
    wr32(&f.dev, b, f.hdm.offset + 0x10, 0x3000_0000);
    assert_eq!(rd32(&f.dev, b, f.hdm.offset + 0x10), 0x2000_0000);
    // A write keeping LOCK=1 is ignored entirely.
    wr32(&f.dev, b, c, 0x100);
    assert_eq!(rd32(&f.dev, b, c), locked);
    // LOCK=0 clears only LOCK, COMMIT/COMMITTED survive although written 0.
    wr32(&f.dev, b, c, 0);
    assert_eq!(rd32(&f.dev, b, c), locked & !0x100);
}

#[test]
fn sim_status2_bits_after_guest_reset() {
    for fail in [false, true] {
        let dev = device(UapiRevision::V2, BarLayout::End);
        let d = u64::from(0x100u16);
        if fail {
            dev.inject(cxl_passthrough::backend::sim::Fault::ResetFails);
        }
        cfg_write(
            &dev,
            d + u64::from(off::CONTROL2),
            &(1u16 << 2).to_le_bytes(),
        );
        let s2 = cfg16(&dev, d + u64::from(off::STATUS2));
        if fail {
            assert_eq!(s2 & 0b110, 0b100, "error stamped");
            assert!(!dev.dpa_active());
        } else {
            assert_eq!(s2 & 0b110, 0b010, "complete stamped");
            assert!(dev.dpa_active());
        }
        // Initiate bit reads back 0.
        assert_eq!(cfg16(&dev, d + u64::from(off::CONTROL2)) & 0b110, 0);
        // Bits 1–2 are not writable by the guest.
        cfg_write(&dev, d + u64::from(off::STATUS2), &0b110u16.to_le_bytes());
        assert_eq!(cfg16(&dev, d + u64::from(off::STATUS2)), s2);
    }
}
