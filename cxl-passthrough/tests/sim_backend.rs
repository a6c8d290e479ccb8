//! The `Backend` implementation, offset layouts, plain vfio-pci fallbacks and bind
//! failures.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use std::os::fd::AsRawFd;

use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::sim::Mapping;
use cxl_passthrough::backend::sim::{
    BarLayout, OffsetLayout, Prot, SimConfig, SimDevice, SimError,
};
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::uapi::wire::*;
use sim_common::*;

#[test]
fn sim_device_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SimDevice>();
    let d = std::sync::Arc::new(device(UapiRevision::V2, BarLayout::End));
    let comp = d.region_offset(10).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let d = d.clone();
            std::thread::spawn(move || {
                (0..200).for_each(|_| assert_eq!(rd32(&d, comp, 0), 0x0211_0001))
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(d.stats().comp_regs_reads, 800);
}

#[test]
fn device_info_grows_argsz() {
    for (rev, cap) in [(UapiRevision::V2, 32), (UapiRevision::V3, 48)] {
        let d = device(rev, BarLayout::End);
        let mut small = [0u8; DEVICE_INFO_SIZE];
        small[..4].copy_from_slice(&(DEVICE_INFO_SIZE as u32).to_le_bytes());
        d.ioctl_device_info(&mut small).unwrap();
        let h = DeviceInfoHeader::decode(&small).unwrap();
        assert_eq!(h.argsz as usize, DEVICE_INFO_SIZE + cap);
        assert_eq!(h.cap_offset, 0);
        assert_eq!(h.num_regions, 11);
        assert_eq!(h.num_irqs, 5);
        let full = d.device_info().unwrap();
        assert_eq!(full.len(), DEVICE_INFO_SIZE + cap);
        assert_eq!(d.stats().device_info, 3);
        // argsz below the minimum is EINVAL; a short user buffer is EFAULT.
        let mut tiny = [0u8; 16];
        tiny[..4].copy_from_slice(&8u32.to_le_bytes());
        assert_eq!(d.ioctl_device_info(&mut tiny).unwrap_err().0, libc::EINVAL);
        let mut liar = [0u8; 24];
        liar[..4].copy_from_slice(&200u32.to_le_bytes());
        assert_eq!(d.ioctl_device_info(&mut liar).unwrap_err().0, libc::EFAULT);
    }
}

#[test]
fn fixed_regions() {
    let d = device(UapiRevision::V2, BarLayout::End);
    for (i, size, flags) in [
        (0u32, 64u64 << 10, 7u32),
        (1, 0, 0),
        (2, 256 << 10, 7 | REGION_FLAG_CAPS),
        (3, 0, 0),
        (6, 0, 0),
        (7, 4096, 3),
    ] {
        let (h, _) = region(&d, i);
        assert_eq!((h.index, h.size, h.flags), (i, size, flags), "region {i}");
        assert_eq!(h.offset, u64::from(i) << 40);
    }
    // No VGA: its index answers EINVAL, as the real driver's does (docs/uapi.md §6, 15).
    let mut b = [0u8; REGION_INFO_SIZE];
    b[..4].copy_from_slice(&32u32.to_le_bytes());
    b[8..12].copy_from_slice(&8u32.to_le_bytes());
    assert_eq!(d.ioctl_region_info(&mut b).unwrap_err().0, libc::EINVAL);
    b[8..12].copy_from_slice(&11u32.to_le_bytes());
    assert_eq!(d.ioctl_region_info(&mut b).unwrap_err().0, libc::EINVAL);
    // Absent regions refuse access.
    assert!(d.pread(1 << 40, &mut [0; 4]).is_err());
}

#[test]
fn packed_layout_offsets_are_not_index_shifted() {
    for rev in [UapiRevision::V2, UapiRevision::V3] {
        let d = SimDevice::new(SimConfig {
            offset_layout: OffsetLayout::Packed,
            ..SimConfig::new(rev)
        })
        .unwrap();
        let fx = Fixture::new(&d);
        let (dpa_i, comp_i) = match rev {
            UapiRevision::V2 => (fx.v2().dpa_region_index, fx.v2().comp_regs_region_index),
            UapiRevision::V3 => (fx.v3().hdm_region_idx, fx.v3().comp_reg_region_idx),
            UapiRevision::V4 => unreachable!("v4 has no CXL capability (sim_v4.rs)"),
        };
        let mut max_other = 0;
        // (8, VGA, is absent: EINVAL)
        for i in (0..11).filter(|&i| i != 8) {
            let (h, _) = region(&d, i);
            assert_ne!(h.offset, u64::from(i) << 40, "{rev:?} region {i}");
            if i != dpa_i {
                max_other = max_other.max(h.offset);
            }
        }
        let (dpa, _) = region(&d, dpa_i);
        assert!(dpa.offset > max_other, "DPA is last in the file");
        let (comp, _) = region(&d, comp_i);
        let hdr = if rev == UapiRevision::V2 { 0 } else { 0x1000 };
        assert_eq!(d.read(comp.offset, hdr, &mut [0; 4]).unwrap(), 4);
        // The Backend's mmap source maps for real at the reported offset.
        let src = d.mmap_source(dpa.offset).unwrap();
        assert_eq!(src.offset, dpa.offset);
        let m = Mapping::map(src.fd, src.offset, 4096, Prot::ReadWrite).unwrap();
        m.write_u32(0, 0xC0FFEE).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(d.read(dpa.offset, 0, &mut b).unwrap(), 4);
        assert_eq!(u32::from_le_bytes(b), 0xC0FFEE);
        assert_eq!(src.fd.as_raw_fd(), d.device_fd().as_raw_fd());
        // COMP_REGS is never mappable.
        assert_eq!(
            d.mmap_source(comp.offset).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
    }
}

#[test]
fn v2_uncommitted_or_memory_class_binds_plain() {
    for cfg in [
        SimConfig {
            firmware_committed: false,
            ..SimConfig::new(UapiRevision::V2)
        },
        SimConfig {
            class_code: 0x05_0210,
            ..SimConfig::new(UapiRevision::V2)
        },
        SimConfig {
            disable_cxl: true,
            ..SimConfig::new(UapiRevision::V3)
        },
    ] {
        let d = SimDevice::new(cfg).unwrap();
        assert!(!d.is_cxl());
        let raw = d.device_info().unwrap();
        let h = DeviceInfoHeader::decode(&raw).unwrap();
        assert_eq!(h.flags & DEVICE_FLAGS_CXL, 0);
        assert_eq!(h.num_regions, 9);
        assert_eq!(h.cap_offset, 0);
        // The component BAR is an ordinary BAR: whole mmap, raw block access to hardware.
        let (bar, _) = region(&d, 2);
        assert_eq!(bar.flags, 7);
        let m = d.mmap(bar.offset, bar.size as usize, Prot::Read).unwrap();
        assert_eq!(m.len() as u64, bar.size);
        let cm = bar.offset + d.config().component_offset() + 0x1000;
        assert_eq!(rd32(&d, cm, 0), 0x0211_0001);
        assert!(d.region_info(9).is_err());
    }
}

#[test]
fn v2_raw_bar_access_reaches_hardware_decoders() {
    let d = device(UapiRevision::V2, BarLayout::Start);
    let (bar, _) = region(&d, 2);
    let ctrl = bar.offset + 0x1220;
    // Hardware decoder 0 is committed and locked by firmware: raw writes are ignored.
    let v = rd32(&d, ctrl, 0);
    assert_eq!(v & 0x700, 0x700);
    wr32(&d, ctrl, 0, 0);
    assert_eq!(rd32(&d, ctrl, 0), v);
    // 1-byte raw read of the HDM capability block works.
    let mut b = [0u8; 1];
    assert_eq!(d.pread(bar.offset + 0x1001, &mut b), Ok(1));
    assert_eq!(b[0], 0x00);
}

#[test]
fn v3_bind_failures_and_config_validation() {
    let e = SimDevice::new(SimConfig {
        decoder_count: 2,
        ..SimConfig::new(UapiRevision::V3)
    })
    .unwrap_err();
    assert!(matches!(e, SimError::BindFailed { errno, .. } if errno == libc::EOPNOTSUPP));
    let e = SimDevice::new(SimConfig {
        firmware_committed: false,
        ..SimConfig::new(UapiRevision::V3)
    })
    .unwrap_err();
    assert!(matches!(e, SimError::BindFailed { .. }));
    for bad in [
        SimConfig {
            dpa_size: 100 << 20,
            ..Default::default()
        },
        SimConfig {
            dpa_size: 0,
            ..Default::default()
        },
        SimConfig {
            decoder_count: 3,
            ..Default::default()
        },
        SimConfig {
            component_bar: 5,
            ..Default::default()
        },
        SimConfig {
            bar_size: 96 << 10,
            ..Default::default()
        },
        SimConfig {
            bar_layout: BarLayout::Middle,
            bar_size: 128 << 10,
            ..Default::default()
        },
        SimConfig {
            bar_layout: BarLayout::Whole,
            bar_size: 128 << 10,
            ..Default::default()
        },
        SimConfig {
            host_hpa: 0x1000,
            ..Default::default()
        },
    ] {
        assert!(matches!(SimDevice::new(bad), Err(SimError::Config(_))));
    }
}

#[test]
fn whole_bar_layout_has_no_sparse_cap() {
    for rev in [UapiRevision::V2, UapiRevision::V3] {
        let d = SimDevice::new(SimConfig {
            bar_layout: BarLayout::Whole,
            bar_size: 64 << 10,
            ..SimConfig::new(rev)
        })
        .unwrap();
        let (bar, _) = region(&d, 2);
        assert_eq!(bar.flags, REGION_FLAG_READ | REGION_FLAG_WRITE);
        assert_eq!(bar.cap_offset, 0);
        assert!(d.mmap(bar.offset, 4096, Prot::Read).is_err());
    }
}

#[test]
fn multi_decoder_v2() {
    let d = SimDevice::new(SimConfig {
        decoder_count: 4,
        ..SimConfig::new(UapiRevision::V2)
    })
    .unwrap();
    let (comp, _) = region(&d, 10);
    assert_eq!(comp.size, 0x200 + 0x10 + 0x20 * 4);
    assert_eq!(rd32(&d, comp.offset, 0x200) & 0xF, 2);
    // Decoder 3 is writable in the shadow, decoder 0 still committed.
    wr32(&d, comp.offset, 0x200 + 0x10 + 0x60, 0x7000_0000);
    assert_eq!(rd32(&d, comp.offset, 0x270), 0x7000_0000);
    assert!(d.dpa_active());
}

#[test]
fn component_bar_other_than_two() {
    for bar in [0u8, 4] {
        let d = SimDevice::new(SimConfig {
            component_bar: bar,
            ..SimConfig::new(UapiRevision::V3)
        })
        .unwrap();
        let fx = Fixture::new(&d);
        assert_eq!(fx.v3().comp_reg_bar, u32::from(bar));
        let (h, raw) = region(&d, u32::from(bar));
        assert!(sparse_areas(&raw, h.cap_offset).is_some());
    }
}

/// What the real v3 driver answered in the lab (docs/uapi.md §6, finding 10) for a
/// 128 KiB component BAR 0 with the component block at offset 0: READ|WRITE|MMAP|CAPS,
/// a 64-byte answer, one sparse area after the block. The v3 simulator answers the same.
#[test]
fn v3_block_at_bar_start_answers_like_the_real_driver() {
    let d = SimDevice::new(SimConfig {
        bar_layout: BarLayout::Start,
        component_bar: 0,
        bar_size: 128 << 10,
        ..SimConfig::new(UapiRevision::V3)
    })
    .unwrap();
    let (bar, raw) = region(&d, 0);
    assert_eq!(bar.size, 0x20000);
    assert_eq!(
        bar.flags,
        REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP | REGION_FLAG_CAPS
    );
    assert_eq!(raw.len(), 64, "the kernel's answer needs argsz 64");
    let areas: Vec<(u64, u64)> = sparse_areas(&raw, bar.cap_offset)
        .unwrap()
        .iter()
        .map(|a| (a.offset, a.size))
        .collect();
    assert_eq!(areas, [(0x10000, 0x10000)]);
}
