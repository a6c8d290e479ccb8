//! Config-space model: PCI semantics on the raw path, DVSEC virtualization per revision
//! (spec §6.4 v2, §7.7 v3), at every access width.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, SimConfig, SimDevice};
use cxl_passthrough::regs::dvsec::off;
use cxl_passthrough::regs::pci::find_dvsec;
use cxl_passthrough::regs::reglocator::RegisterBlock;
use cxl_passthrough::uapi::UapiRevision;
use sim_common::*;

const D: u64 = 0x100;

fn at(r: u16) -> u64 {
    D + u64::from(r)
}

#[test]
fn pci_header_and_bar_sizing() {
    let dev = device(UapiRevision::V2, BarLayout::End);
    let id = cfg32(&dev, 0);
    cfg_write(&dev, 0, &[0xFF; 4]);
    assert_eq!(cfg32(&dev, 0), id, "IDs are read-only");
    assert_eq!(id, 0x00C2_1B36);
    assert_eq!(cfg32(&dev, 8) >> 8, 0x12_0000);
    // BAR 2/3: 64-bit, 256 KiB.
    let bar = 0x10 + 4 * 2;
    let lo = cfg32(&dev, bar);
    assert_eq!(lo & 0x7, 0b100);
    cfg_write(&dev, bar, &[0xFF; 4]);
    cfg_write(&dev, bar + 4, &[0xFF; 4]);
    let mask = (u64::from(cfg32(&dev, bar + 4)) << 32) | u64::from(cfg32(&dev, bar) & !0xF);
    assert_eq!(!mask + 1, 256 << 10);
    // BAR 0: 32-bit 64 KiB aux BAR; BAR 1 absent.
    cfg_write(&dev, 0x10, &[0xFF; 4]);
    assert_eq!(!(cfg32(&dev, 0x10) & !0xF) + 1, 64 << 10);
    cfg_write(&dev, 0x14, &[0xFF; 4]);
    assert_eq!(cfg32(&dev, 0x14), 0);
    // Capability list: PCIe capability at 0x40.
    assert!(cfg16(&dev, 6) & 0x10 != 0);
    assert_eq!(cfg_read::<1>(&dev, 0x34).unwrap()[0], 0x40);
    assert_eq!(cfg_read::<1>(&dev, 0x40).unwrap()[0], 0x10);
    // Beyond config space.
    assert!(cfg_read::<4>(&dev, 0x1000).is_err());
}

#[test]
fn register_locator_points_at_component_block() {
    for rev in UapiRevision::ALL {
        for t in BAR_LAYOUTS {
            let dev = device(rev, t);
            let rd = |o: u16| Ok::<_, ()>(cfg32(&dev, u64::from(o)));
            let loc = find_dvsec(rd, 0x1E98, 8).unwrap().unwrap();
            let o = u64::from(loc.offset);
            let b = RegisterBlock::decode(cfg32(&dev, o + 0xC), cfg32(&dev, o + 0x10));
            assert_eq!(
                (b.bar, b.block_id, b.offset),
                (2, 1, dev.config().component_offset())
            );
            let dv = find_dvsec(rd, 0x1E98, 0).unwrap().unwrap();
            assert_eq!((dv.offset, dv.revision, dv.length), (0x100, 2, 0x3C));
            // Device DVSEC capability, ranges.
            let cap = cfg16(&dev, at(off::CAPABILITY));
            assert!(cap & (1 << 2) != 0 && (cap >> 4) & 3 == 1);
            let size_lo = cfg32(&dev, at(off::range_size_lo(0)));
            assert_eq!(size_lo & 3, 3, "valid and active");
            let size = (u64::from(cfg32(&dev, at(off::range_size_hi(0)))) << 32)
                | u64::from(size_lo & 0xF000_0000);
            assert_eq!(size, dev.config().dpa_size);
            let base = (u64::from(cfg32(&dev, at(off::range_base_hi(0)))) << 32)
                | u64::from(cfg32(&dev, at(off::range_base_lo(0))));
            assert_eq!(base, dev.config().host_hpa);
        }
    }
}

#[test]
fn v2_control_rules() {
    let dev = device(UapiRevision::V2, BarLayout::End);
    // IO_Enable forced at open.
    assert!(cfg16(&dev, at(off::CONTROL)) & 2 != 0);
    cfg_write(&dev, at(off::CONTROL), &0xFFFFu16.to_le_bytes());
    // bits 13, 15 cleared; bit 12 cleared (no P2P in Capability3); bit 1 forced.
    assert_eq!(
        cfg16(&dev, at(off::CONTROL)),
        !(1 << 13) & !(1 << 15) & !(1 << 12)
    );
    cfg_write(&dev, at(off::CONTROL), &0u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CONTROL)), 0x2);
    // Never forwarded to hardware.
    let mut hw = [0u8; 2];
    dev.hw_config_read(0x10C, &mut hw);
    assert_eq!(u16::from_le_bytes(hw) & 0x4, 0x4);
    // 1-byte write to the high byte merges with the shadow low byte.
    cfg_write(&dev, at(off::CONTROL) + 1, &[0x40]);
    assert_eq!(cfg16(&dev, at(off::CONTROL)), 0x4002);
}

#[test]
fn v2_control2_status2_rules() {
    let dev = device(UapiRevision::V2, BarLayout::End);
    cfg_write(&dev, at(off::CONTROL2), &0xFFFBu16.to_le_bytes());
    // 15:6 cleared, bit 4 (no Cap3 bit 3) and 5 (no Cap2 bit 6) cleared, 1 and 2 read 0.
    assert_eq!(cfg16(&dev, at(off::CONTROL2)), 0b1001);
    // WBI was forwarded: hardware reports Cache_Invalid.
    assert_eq!(cfg16(&dev, at(off::STATUS2)) & 1, 1);
    // 4-byte read at Control2 returns Control2 and the merged Status2.
    assert_eq!(cfg32(&dev, at(off::CONTROL2)), 0b1001 | (1 << 16));
}

#[test]
fn v2_lock_and_ranges() {
    let dev = device(UapiRevision::V2, BarLayout::End);
    // Range base writes go to vconfig; reads come from hardware.
    let base_lo = cfg32(&dev, at(off::range_base_lo(0)));
    cfg_write(
        &dev,
        at(off::range_base_lo(0)),
        &0x1234_5678u32.to_le_bytes(),
    );
    assert_eq!(cfg32(&dev, at(off::range_base_lo(0))), base_lo);
    // Capability is read-only.
    let cap = cfg16(&dev, at(off::CAPABILITY));
    cfg_write(&dev, at(off::CAPABILITY), &0u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CAPABILITY)), cap);
    // Lock latches and freezes Control until reopen (re-seeded from hardware).
    cfg_write(&dev, at(off::LOCK), &1u16.to_le_bytes());
    let c = cfg16(&dev, at(off::CONTROL));
    cfg_write(&dev, at(off::CONTROL), &0u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CONTROL)), c);
    cfg_write(&dev, at(off::LOCK), &0u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::LOCK)), 1);
    dev.close();
    dev.open().unwrap();
    assert_eq!(cfg16(&dev, at(off::LOCK)), 0);
}

#[test]
fn v3_dvsec_rules() {
    let dev = device(UapiRevision::V3, BarLayout::End);
    // Stored verbatim: reserved bits and IO_Enable=0 included.
    cfg_write(&dev, at(off::CONTROL), &0xA000u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CONTROL)), 0xA000);
    // A 4-byte write at Control updates only Control.
    cfg_write(&dev, at(off::CONTROL), &0xFFFF_0001u32.to_le_bytes());
    assert_eq!(cfg32(&dev, at(off::CONTROL)), 0x0000_0001);
    // Capability and ranges are dropped.
    let cap = cfg16(&dev, at(off::CAPABILITY));
    cfg_write(&dev, at(off::CAPABILITY), &0u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CAPABILITY)), cap);
    let r = cfg32(&dev, at(off::range_base_lo(0)));
    cfg_write(&dev, at(off::range_base_lo(0)), &0u32.to_le_bytes());
    assert_eq!(cfg32(&dev, at(off::range_base_lo(0))), r);
    // Chunks are clipped at the body: a dword read at +0x08 = header2 | capability.
    assert_eq!(cfg32(&dev, at(off::HEADER2)), u32::from(cap) << 16);
    // Writes never reach hardware.
    let mut hw = [0u8; 2];
    dev.hw_config_read(0x10C, &mut hw);
    assert_eq!(u16::from_le_bytes(hw), 0x7);
    // Lock: writing 1 latches; Control/Control2 then frozen.
    cfg_write(&dev, at(off::LOCK), &1u16.to_le_bytes());
    assert_eq!(cfg_read::<1>(&dev, at(off::LOCK)).unwrap()[0], 1);
    cfg_write(&dev, at(off::CONTROL), &0x4u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CONTROL)), 0x1);
    // Survives close/reopen (snapshot at bind).
    dev.close();
    dev.open().unwrap();
    assert_eq!(cfg16(&dev, at(off::CONTROL)), 0x1);
}

#[test]
fn v3_firmware_locked_dvsec_stays_writable() {
    // Observed in code: the latch starts false even when the snapshot has CONFIG_LOCK.
    let dev = SimDevice::new(SimConfig {
        dvsec_config_locked: true,
        ..SimConfig::new(UapiRevision::V3)
    })
    .unwrap();
    assert_eq!(cfg16(&dev, at(off::LOCK)), 1);
    cfg_write(&dev, at(off::CONTROL), &0x4u16.to_le_bytes());
    assert_eq!(cfg16(&dev, at(off::CONTROL)), 0x4);
}

#[test]
fn reads_agree_at_every_width() {
    for rev in UapiRevision::ALL {
        let dev = device(rev, BarLayout::Middle);
        for o in (0..0x160u64).step_by(4) {
            let d = cfg32(&dev, o).to_le_bytes();
            let w = [
                cfg16(&dev, o).to_le_bytes(),
                cfg16(&dev, o + 2).to_le_bytes(),
            ]
            .concat();
            let b: Vec<u8> = (0..4)
                .map(|i| cfg_read::<1>(&dev, o + i).unwrap()[0])
                .collect();
            assert_eq!(d.to_vec(), w, "{rev:?} {o:#x}");
            assert_eq!(d.to_vec(), b, "{rev:?} {o:#x}");
            // An unaligned 3-byte read is split into natural chunks.
            let mut three = [0u8; 3];
            let base = dev.region_offset(7).unwrap();
            assert_eq!(dev.pread(base + o + 1, &mut three), Ok(3));
            assert_eq!(three, [d[1], d[2], d[3]]);
        }
    }
}
