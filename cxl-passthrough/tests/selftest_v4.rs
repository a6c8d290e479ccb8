//! The v4 kernel selftest (`vfio_cxl_type2_test.c`, 19 cases; reference
//! `docs/uapi.md` §7) reproduced against the simulator's v4 mode, on every BAR layout
//! where the case depends on it, plus the v4 bind rules (fallback to plain vfio-pci).
//! The dma-buf export (`hdm_mem_ioas_map`) needs iommufd and is covered at the ioctl
//! boundary in `kernel_io.rs`.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, Prot, SimConfig, SimDevice};
use cxl_passthrough::regs::dvsec::{
    CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, DVSEC_ID_REGISTER_LOCATOR, off,
};
use cxl_passthrough::regs::hdm::DecoderReg;
use cxl_passthrough::regs::pci::find_dvsec;
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::uapi::wire::*;
use sim_common::*;

const COMMIT: u32 = 1 << 9;
const COMMITTED: u32 = 1 << 10;
const LOCK: u32 = 1 << 8;
const CTRL0: u64 = 0x20;
const BASE_LO0: u64 = 0x10;

struct V4 {
    dev: SimDevice,
    mem: RegionInfoHeader,
    mem_raw: Vec<u8>,
    comp: RegionInfoHeader,
    geo: CompRegsGeometryCap,
    dvsec: u64,
}

/// The fixture: GET_INFO (512 bytes), both regions by a CAP_TYPE scan, the geometry
/// capability, the CXL Device DVSEC, and COMMAND.MEMORY set.
fn setup_with(cfg: SimConfig) -> V4 {
    let dev = SimDevice::new(cfg).unwrap();
    let mut raw = vec![0u8; 512];
    raw[..4].copy_from_slice(&512u32.to_le_bytes());
    dev.ioctl_device_info(&mut raw).unwrap();
    let info = DeviceInfoHeader::decode(&raw).unwrap();
    assert_ne!(info.flags & DEVICE_FLAGS_CXL, 0, "not a CXL Type-2 device");
    let scan = |subtype: u32| {
        (9..info.num_regions)
            .map(|i| region(&dev, i))
            .find(|(h, raw)| {
                find_cap(raw, h.cap_offset, REGION_CAP_TYPE).is_some_and(|o| {
                    le32(raw, o + 8) == Some(REGION_TYPE_CXL) && le32(raw, o + 12) == Some(subtype)
                })
            })
            .expect("region by type")
    };
    let (mem, mem_raw) = scan(REGION_SUBTYPE_CXL_DPA);
    let (comp, comp_raw) = scan(REGION_SUBTYPE_CXL_COMP_REGS);
    let g = find_cap(&comp_raw, comp.cap_offset, REGION_CAP_CXL_COMP_REGS).expect("geometry cap");
    let geo = CompRegsGeometryCap::decode(&comp_raw, g).unwrap();
    let cfg_read = |o: u16| Ok::<u32, ()>(cfg32(&dev, u64::from(o)));
    let dvsec = find_dvsec(cfg_read, CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE)
        .unwrap()
        .map_or(0, |l| u64::from(l.offset));
    cfg_write(&dev, 4, &(cfg16(&dev, 4) | 2).to_le_bytes());
    V4 {
        dev,
        mem,
        mem_raw,
        comp,
        geo,
        dvsec,
    }
}

fn setup(t: BarLayout) -> V4 {
    setup_with(SimConfig {
        bar_layout: t,
        ..SimConfig::new(UapiRevision::V4)
    })
}

fn layouts() -> Vec<V4> {
    BAR_LAYOUTS
        .into_iter()
        .map(setup)
        .chain(std::iter::once(setup_with(SimConfig {
            bar_layout: BarLayout::Whole,
            bar_size: 64 << 10,
            ..SimConfig::new(UapiRevision::V4)
        })))
        .collect()
}

#[test]
fn device_is_cxl_and_region_flags() {
    for f in layouts() {
        assert_ne!(f.mem.index, f.comp.index);
        assert!(f.mem.size > 0 && f.comp.size > 0);
        assert!(f.geo.bar < 6);
        let rwm = REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP;
        assert_eq!(f.mem.flags & rwm, rwm);
        assert_eq!(f.comp.flags & rwm, REGION_FLAG_READ | REGION_FLAG_WRITE);
        // v4 specifics: memory region registered first, no device capability.
        assert_eq!((f.mem.index, f.comp.index), (9, 10));
        assert!(find_cap(&f.mem_raw, f.mem.cap_offset, REGION_CAP_CXL_COMP_REGS).is_none());
        let mut raw = vec![0u8; 512];
        raw[..4].copy_from_slice(&512u32.to_le_bytes());
        f.dev.ioctl_device_info(&mut raw).unwrap();
        let info = DeviceInfoHeader::decode(&raw).unwrap();
        assert_eq!((info.cap_offset, info.flags & DEVICE_FLAGS_CAPS), (0, 0));
        assert_ne!(info.flags & DEVICE_FLAGS_RESET, 0);
    }
}

#[test]
fn comp_bar_sparse_mmap() {
    for f in layouts() {
        let (bar, raw) = region(&f.dev, f.geo.bar);
        assert_ne!(bar.flags & REGION_FLAG_MMAP, 0);
        let areas = sparse_areas(&raw, bar.cap_offset).expect("sparse cap");
        assert!(!areas.is_empty());
        assert!(
            f.dev
                .mmap(bar.offset, bar.size as usize, Prot::Read)
                .is_err()
        );
        for a in areas.iter().filter(|a| a.size > 0) {
            assert_eq!((a.offset % 4096, a.size % 4096), (0, 0));
            f.dev
                .mmap(bar.offset + a.offset, a.size as usize, Prot::ReadWrite)
                .unwrap();
        }
        let page = f.geo.offset & !0xFFF;
        assert!(f.dev.mmap(bar.offset + page, 4096, Prot::Read).is_err());
    }
}

#[test]
fn hdm_mem_mmap_rw_huge_and_committed_base() {
    let f = setup(BarLayout::End);
    let m = f.dev.mmap(f.mem.offset, 4096, Prot::ReadWrite).unwrap();
    m.write_u32(0, 0xDEAD_BEEF).unwrap();
    assert_eq!(m.read_u32(0).unwrap(), 0xDEAD_BEEF);
    let m = f.dev.mmap(f.mem.offset, 2 << 20, Prot::ReadWrite).unwrap();
    m.write_u32((2 << 20) - 4, 0x5A5A_5A5A).unwrap();
    assert_eq!(m.read_u32((2 << 20) - 4).unwrap(), 0x5A5A_5A5A);
    // hdm_mem_touch_committed_base: decoder SIZE equals the region size exactly.
    let c = f.comp.offset;
    let size = u64::from(rd32(&f.dev, c, 0x1C)) << 32 | u64::from(rd32(&f.dev, c, 0x18));
    assert_eq!(size, f.mem.size);
}

#[test]
fn comp_regs_reads_and_rejections() {
    let f = setup(BarLayout::Middle);
    let c = f.comp.offset;
    assert!(f.comp.size >= CTRL0 + 4);
    rd32(&f.dev, c, CTRL0);
    assert!(f.dev.pread(c + 1, &mut [0u8; 4]).is_err());
    assert!(f.dev.pread(c, &mut [0u8; 2]).is_err());
    assert!(f.dev.pread(c + f.comp.size, &mut [0u8; 4]).is_err());
    // COMP_REGS is never mappable.
    assert!(f.dev.mmap(c, 4096, Prot::Read).is_err());
}

#[test]
fn decoder_writes_are_absorbed() {
    let f = setup(BarLayout::Start);
    let c = f.comp.offset;
    let orig = rd32(&f.dev, c, CTRL0);
    assert_ne!(orig & COMMITTED, 0, "firmware-committed decoder");
    // hdm_commit_fsm
    wr32(&f.dev, c, CTRL0, orig & !COMMIT);
    assert_ne!(rd32(&f.dev, c, CTRL0) & COMMITTED, 0);
    // hdm_lock_on_commit (the sim's firmware sets LOCK, as the selftest needs)
    for v in [COMMIT | LOCK, 0] {
        wr32(&f.dev, c, CTRL0, v);
        let r = rd32(&f.dev, c, CTRL0);
        assert_eq!(r & (COMMITTED | LOCK), COMMITTED | LOCK);
    }
    // hdm_base_write_absorbed: the base stays the host HPA.
    let base = rd32(&f.dev, c, BASE_LO0);
    wr32(&f.dev, c, BASE_LO0, 0x3000_0000);
    assert_eq!(rd32(&f.dev, c, BASE_LO0), base);
    assert_eq!(
        u64::from(rd32(&f.dev, c, BASE_LO0 + 4)) << 32 | u64::from(base),
        f.dev.config().host_hpa,
        "live reads show the host HPA"
    );
}

#[test]
fn dvsec_read_and_virtualized_writes() {
    let f = setup(BarLayout::End);
    assert_ne!(f.dvsec, 0);
    assert_ne!(cfg32(&f.dev, f.dvsec + 4), u32::MAX);
    let cap_at = f.dvsec + u64::from(off::CAPABILITY);
    let cap = cfg16(&f.dev, cap_at);
    cfg_write(&f.dev, cap_at, &(cap ^ 0xFFFF).to_le_bytes());
    assert_eq!(cfg16(&f.dev, cap_at), cap);
    let ctl_at = f.dvsec + u64::from(off::CONTROL);
    let ctl = cfg16(&f.dev, ctl_at);
    cfg_write(&f.dev, ctl_at, &(ctl ^ 1).to_le_bytes());
    assert_eq!(cfg16(&f.dev, ctl_at), ctl ^ 1);
    cfg_write(&f.dev, ctl_at, &ctl.to_le_bytes());
    // Never forwarded to hardware.
    let mut hw = [0u8; 2];
    f.dev.hw_config_read(ctl_at as u16, &mut hw);
    assert_eq!(u16::from_le_bytes(hw), ctl);
}

#[test]
fn guest_cxl_reset_runs_a_real_reset_and_reports_completion() {
    let f = setup(BarLayout::End);
    let cap = cfg16(&f.dev, f.dvsec + u64::from(off::CAPABILITY));
    assert_ne!(cap & (1 << 7), 0, "CXL reset capable");
    f.dev.dpa_host_write(0, b"wiped").unwrap();
    let before = f.dev.stats().hw_resets;
    let c2_at = f.dvsec + u64::from(off::CONTROL2);
    let c2 = cfg16(&f.dev, c2_at);
    cfg_write(&f.dev, c2_at, &(c2 | 1 << 2).to_le_bytes());
    assert_eq!(cfg16(&f.dev, c2_at) & (1 << 2), 0, "self-clears");
    let s2 = cfg16(&f.dev, f.dvsec + u64::from(off::STATUS2));
    assert_eq!(s2 & 0b110, 0b010, "complete, no error");
    assert_eq!(f.dev.stats().hw_resets, before + 1, "a real reset ran");
    let mut b = [0xFFu8; 5];
    f.dev.dpa_host_read(0, &mut b).unwrap();
    assert_eq!(b, [0; 5], "device memory cleared");
    // Cache WB&I completes in the view only.
    cfg_write(&f.dev, c2_at, &(1u16 << 1).to_le_bytes());
    assert_eq!(cfg16(&f.dev, c2_at) & 0b10, 0);
    assert_ne!(cfg16(&f.dev, f.dvsec + u64::from(off::STATUS2)) & 1, 0);
}

#[test]
fn device_reset_and_memory_space_gate() {
    let f = setup(BarLayout::End);
    f.dev.dpa_host_write(0, b"gone").unwrap();
    f.dev.ioctl_reset().unwrap();
    let mut b = [0u8; 4];
    assert_eq!(f.dev.pread(f.mem.offset, &mut b), Ok(4));
    assert_eq!(b, [0; 4]);
    // Memory Space off: pread EIO and the mapping faults; on again: back.
    cfg_write(&f.dev, 4, &(cfg16(&f.dev, 4) & !2).to_le_bytes());
    assert_eq!(
        f.dev.pread(f.mem.offset, &mut b),
        Err(cxl_passthrough::backend::sim::Errno::EIO)
    );
    let m = f.dev.mmap(f.mem.offset, 4096, Prot::Read).unwrap();
    assert!(m.probe_read(0, &mut b).is_err());
    cfg_write(&f.dev, 4, &(cfg16(&f.dev, 4) | 2).to_le_bytes());
    assert!(m.probe_read(0, &mut b).is_ok());
}

#[test]
fn comp_bar_rdwr_split_and_guest_hdm_discovery() {
    for f in layouts() {
        let bar = f.dev.region_offset(f.geo.bar).unwrap();
        assert_eq!(f.dev.pread(bar, &mut [0u8; 4]), Ok(4));
        assert_eq!(rd32(&f.dev, bar, f.geo.offset), u32::MAX);
        // A raw write into the HDM block is dropped (and reported as done).
        let before = f.dev.hw_hdm();
        wr32(&f.dev, bar, f.geo.offset + CTRL0, 0);
        assert_eq!(f.dev.hw_hdm(), before);
        // The guest's walk: Register Locator → component block → CM array via the BAR.
        let cfg_read = |o: u16| Ok::<u32, ()>(cfg32(&f.dev, u64::from(o)));
        let rl = find_dvsec(cfg_read, CXL_VENDOR_ID, DVSEC_ID_REGISTER_LOCATOR)
            .unwrap()
            .unwrap();
        let lo = cfg32(&f.dev, u64::from(rl.offset) + 0x0C);
        let hi = cfg32(&f.dev, u64::from(rl.offset) + 0x10);
        assert_eq!((lo >> 8) & 0xFF, 1, "component block");
        assert_eq!(lo & 7, f.geo.bar);
        let cm = (u64::from(hi) << 32 | u64::from(lo & 0xFFFF_0000)) + 0x1000;
        let hdr = rd32(&f.dev, bar, cm);
        assert_eq!(hdr & 0xFFFF, 1);
        let hdm = (1..=u64::from(hdr >> 24))
            .map(|i| rd32(&f.dev, bar, cm + 4 * i))
            .find(|e| e & 0xFFFF == 5)
            .map(|e| cm + u64::from(e >> 20))
            .expect("HDM entry");
        assert_eq!(hdm, f.geo.offset);
        let c = f.comp.offset;
        let base =
            u64::from(rd32(&f.dev, c, BASE_LO0 + 4)) << 32 | u64::from(rd32(&f.dev, c, BASE_LO0));
        let size = u64::from(rd32(&f.dev, c, 0x1C)) << 32 | u64::from(rd32(&f.dev, c, 0x18));
        assert!(size > 0 && base < base + size);
    }
}

#[test]
fn memory_is_wiped_at_close_and_reopen() {
    let f = setup(BarLayout::End);
    f.dev.dpa_host_write(0, b"gone").unwrap();
    f.dev.close();
    f.dev.open().unwrap();
    let mut b = [0xFFu8; 4];
    f.dev.dpa_host_read(0, &mut b).unwrap();
    assert_eq!(b, [0; 4]);
    // Memory Space is off again after the open (vfio's virtual COMMAND).
    assert!(!f.dev.dpa_active());
    assert_eq!(
        f.dev.hw_decoder(0).unwrap()[DecoderReg::Ctrl as usize] & COMMITTED,
        COMMITTED
    );
}

#[test]
fn unsupported_devices_bind_as_plain_vfio_pci() {
    for cfg in [
        SimConfig {
            cache_capable: false,
            ..SimConfig::new(UapiRevision::V4)
        },
        SimConfig {
            decoder_count: 2,
            ..SimConfig::new(UapiRevision::V4)
        },
        SimConfig {
            cxl_reset_capable: false,
            ..SimConfig::new(UapiRevision::V4)
        },
        SimConfig {
            firmware_committed: false,
            ..SimConfig::new(UapiRevision::V4)
        },
    ] {
        let d = SimDevice::new(cfg.clone()).unwrap();
        assert!(!d.is_cxl(), "{cfg:?}");
        let raw = cxl_passthrough::backend::Backend::device_info(&d).unwrap();
        let h = DeviceInfoHeader::decode(&raw).unwrap();
        assert_eq!((h.flags & DEVICE_FLAGS_CXL, h.num_regions), (0, 9));
    }
}
