//! Reset flows of the simulator (spec §6.5 for v2, none for v3).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::sim::{BarLayout, Fault, Prot, SimConfig, SimDevice};
use cxl_passthrough::regs::dvsec::off;
use cxl_passthrough::uapi::UapiRevision;
use sim_common::*;

const DVSEC: u64 = 0x100;
const DEVCTL: u64 = 0x48;

fn v2(cfg: SimConfig) -> (SimDevice, u64, u64) {
    let dev = SimDevice::new(cfg).unwrap();
    let dpa = dev.region_offset(9).unwrap();
    let comp = dev.region_offset(10).unwrap();
    (dev, dpa, comp)
}

fn v2_default() -> (SimDevice, u64, u64) {
    v2(SimConfig::new(UapiRevision::V2))
}

#[test]
fn v2_ioctl_reset_keeps_data_and_mappings_refault() {
    let (dev, dpa, _) = v2_default();
    let m = dev.mmap(dpa, 2 << 20, Prot::ReadWrite).unwrap();
    m.write_u32(0x1000, 0x1234_5678).unwrap();
    assert_eq!(dev.pwrite(dpa + (300 << 20), b"tail"), Ok(4));
    let before = dev.stats().hw_resets;
    dev.ioctl_reset().unwrap();
    assert_eq!(dev.stats().hw_resets, before + 1);
    assert_eq!(dev.stats().resets, 1);
    assert!(dev.dpa_active());
    // Same mapping, no new mmap: pages fault back in with the data.
    assert_eq!(m.read_u32(0x1000).unwrap(), 0x1234_5678);
    let mut b = [0u8; 4];
    assert_eq!(dev.pread(dpa + (300 << 20), &mut b), Ok(4));
    assert_eq!(&b, b"tail");
}

#[test]
fn v2_failed_reset_stays_inactive_until_a_good_reset() {
    let (dev, dpa, _) = v2_default();
    let m = dev.mmap(dpa, 4096, Prot::ReadWrite).unwrap();
    m.write_u32(0, 7).unwrap();
    dev.inject(Fault::ResetFails);
    assert_eq!(dev.ioctl_reset().unwrap_err().0, libc::EIO);
    assert!(!dev.dpa_active());
    assert!(dev.dpa_zapped());
    let mut b = [0u8; 4];
    assert_eq!(dev.pread(dpa, &mut b).unwrap_err().0, libc::EIO);
    assert_eq!(
        m.probe_read(0, &mut b).unwrap_err().raw_os_error(),
        Some(libc::EFAULT)
    );
    // Device memory itself still holds the data.
    dev.dpa_host_read(0, &mut b).unwrap();
    assert_eq!(u32::from_le_bytes(b), 7);
    dev.dpa_host_write(4, &[1, 2, 3, 4]).unwrap();
    dev.ioctl_reset().unwrap();
    assert!(dev.dpa_active());
    assert_eq!(m.read_u32(0).unwrap(), 7);
    assert_eq!(m.read_u32(4).unwrap(), u32::from_le_bytes([1, 2, 3, 4]));
}

#[test]
fn v2_reset_refreshes_shadow_but_preserves_guest_base() {
    let (dev, _, comp) = v2_default();
    // What the companion QEMU does at machine-done: BASE = GPA, COMMIT|LOCK.
    wr32(&dev, comp, 0x210, 0x2000_0000);
    wr32(&dev, comp, 0x214, 0x1);
    wr32(&dev, comp, 0x220, (1 << 9) | (1 << 8));
    assert_eq!(rd32(&dev, comp, 0x220) & 0x700, 0x700);
    dev.ioctl_reset().unwrap();
    // Re-read from hardware: committed+locked → LOCK cleared; BASE restored.
    assert_eq!(rd32(&dev, comp, 0x220) & 0x700, 0x600);
    assert_eq!(rd32(&dev, comp, 0x210), 0x2000_0000);
    assert_eq!(rd32(&dev, comp, 0x214), 0x1);
}

#[test]
fn v2_reopen_discards_shadow_writes() {
    let (dev, _, comp) = v2_default();
    wr32(&dev, comp, 0x210, 0x2000_0000);
    wr32(&dev, comp, 0x204, 0x2);
    dev.close();
    dev.open().unwrap();
    assert_eq!(rd32(&dev, comp, 0x210), 0);
    assert_eq!(rd32(&dev, comp, 0x204), 0x2);
    assert_eq!(dev.open().unwrap_err().0, libc::EBUSY);
}

#[test]
fn v2_reset_turns_memory_space_on() {
    let (dev, _, _) = v2_default();
    let cmd = cfg16(&dev, 4);
    cfg_write(&dev, 4, &(cmd & !0x2).to_le_bytes());
    assert_eq!(cfg16(&dev, 4) & 0x2, 0);
    dev.ioctl_reset().unwrap();
    assert_eq!(
        cfg16(&dev, 4) & 0x2,
        0x2,
        "reset series leaves Memory Space enabled"
    );
}

#[test]
fn v2_guest_cxl_reset_mem_clr() {
    for mem_clr in [false, true] {
        let (dev, dpa, _) = v2_default();
        assert_eq!(dev.pwrite(dpa + 64, &[0xEE; 4]), Ok(4));
        let mut ctl2 = 1u16 << 2;
        if mem_clr {
            ctl2 |= 1 << 3;
        }
        cfg_write(&dev, DVSEC + u64::from(off::CONTROL2), &ctl2.to_le_bytes());
        let mut b = [0u8; 4];
        assert_eq!(dev.pread(dpa + 64, &mut b), Ok(4));
        assert_eq!(b, if mem_clr { [0; 4] } else { [0xEE; 4] });
        // The shadow kept Mem_Clr_En, never the initiate bit.
        assert_eq!(
            cfg16(&dev, DVSEC + u64::from(off::CONTROL2)),
            ctl2 & !(1 << 2)
        );
    }
}

#[test]
fn v2_guest_cxl_reset_needs_capability() {
    let (dev, _, _) = v2(SimConfig {
        cxl_reset_capable: false,
        ..SimConfig::new(UapiRevision::V2)
    });
    let before = dev.stats().hw_resets;
    cfg_write(
        &dev,
        DVSEC + u64::from(off::CONTROL2),
        &(1u16 << 2).to_le_bytes(),
    );
    assert_eq!(dev.stats().hw_resets, before);
    assert_eq!(cfg16(&dev, DVSEC + u64::from(off::STATUS2)) & 0b110, 0);
}

#[test]
fn guest_flr_through_device_control() {
    for rev in UapiRevision::ALL {
        let dev = device(rev, BarLayout::End);
        if rev == UapiRevision::V4 {
            // v4 serves device memory only with (virtual) Memory Space enabled.
            assert!(!dev.dpa_active());
            cfg_write(&dev, 4, &(cfg16(&dev, 4) | 2).to_le_bytes());
        }
        let before = dev.stats().hw_resets;
        let ctl = cfg16(&dev, DEVCTL);
        cfg_write(&dev, DEVCTL, &(ctl | 0x8000).to_le_bytes());
        assert_eq!(dev.stats().hw_resets, before + 1, "{rev:?}");
        assert_eq!(cfg16(&dev, DEVCTL) & 0x8000, 0, "FLR bit self-clears");
        assert!(dev.dpa_active());
    }
}

#[test]
fn v2_hw_not_recommitted_at_open_leaves_region_inactive() {
    // The open-time function reset clears the decoders: DPA is dead from the start
    // (what the BOS kernel's dpa_mmap_fault SIGBUS looked like).
    let (dev, dpa, comp) = v2(SimConfig {
        post_reset_hw_committed: false,
        ..SimConfig::new(UapiRevision::V2)
    });
    assert!(!dev.dpa_active());
    let mut b = [0u8; 4];
    assert_eq!(dev.pread(dpa, &mut b).unwrap_err().0, libc::EIO);
    let m = dev.mmap(dpa, 4096, Prot::Read).unwrap();
    assert_eq!(
        m.probe_read(0, &mut b).unwrap_err().raw_os_error(),
        Some(libc::EFAULT)
    );
    assert_eq!(rd32(&dev, comp, 0x220) & (1 << 10), 0);
}

#[test]
fn v3_guest_cxl_reset_is_only_stored() {
    let dev = device(UapiRevision::V3, BarLayout::End);
    let before = dev.stats().hw_resets;
    cfg_write(
        &dev,
        DVSEC + u64::from(off::CONTROL2),
        &(1u16 << 2).to_le_bytes(),
    );
    assert_eq!(dev.stats().hw_resets, before);
    assert_eq!(cfg16(&dev, DVSEC + u64::from(off::CONTROL2)), 1 << 2);
}

#[test]
fn v3_reset_failure_reports_error_without_zap() {
    let dev = device(UapiRevision::V3, BarLayout::End);
    dev.inject(Fault::ResetFails);
    assert_eq!(dev.ioctl_reset().unwrap_err().0, libc::EIO);
    let hdm = dev.region_offset(10).unwrap();
    let mut b = [0u8; 4];
    assert_eq!(dev.pread(hdm, &mut b), Ok(4));
}
