//! Reset: the device is fenced while resetting, the decoder is re-locked and verified
//! afterwards, and a failed reset leaves the device fenced with the error reported.
#![allow(clippy::unwrap_used)]

mod runtime_common;

use cxl_passthrough::backend::ResetKind;
use cxl_passthrough::backend::sim::{Fault, OffsetLayout, SimConfig, SimDevice};
use cxl_passthrough::runtime::guest_reset::{GuestReset, classify_config_write};
use cxl_passthrough::runtime::{DeviceError, DeviceState, HookError, HookStep, MemoryHooks};
use cxl_passthrough::uapi::UapiRevision;
use runtime_common::*;
use std::sync::Arc;

/// Records the hook calls and checks the overlay is fenced while memory is quiesced.
#[derive(Default)]
struct Hooks {
    calls: Vec<&'static str>,
    fail_restore: bool,
}

impl MemoryHooks for Hooks {
    fn quiesce(&mut self) -> Result<(), HookError> {
        self.calls.push("quiesce");
        Ok(())
    }
    fn restore(&mut self) -> Result<(), HookError> {
        self.calls.push("restore");
        if self.fail_restore {
            Err(HookError::new("memslot re-add failed"))
        } else {
            Ok(())
        }
    }
}

fn read32(dev: &cxl_passthrough::runtime::CxlDevice, off: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.overlay().read(off, &mut b);
    u32::from_le_bytes(b)
}

/// v2/v3 keep device memory across a VFIO reset; v4's reset is a CXL reset, which
/// always clears it (the mapping then reads zeros, and works).
#[test]
fn vfio_reset_relocks_and_keeps_memory() {
    for rev in REVISIONS {
        let s = sim(rev, BAR_LAYOUTS[2], OffsetLayout::Kernel);
        let (dev, _) = device(s.clone());
        dev.boot().unwrap();
        s.dpa_host_write(0, b"survives").unwrap();
        let mut hooks = Hooks::default();
        let d = dev.reset(ResetKind::Device, &mut hooks).unwrap();
        assert_eq!(hooks.calls, ["quiesce", "restore"], "{rev:?}");
        assert_eq!(d.base, WINDOW_BASE);
        assert!(d.committed && d.locked, "{rev:?}");
        assert_eq!(dev.current_state(), DeviceState::Locked(d));
        assert!(!dev.overlay().is_fenced());
        let expect: &[u8; 8] = if rev == UapiRevision::V4 {
            &[0; 8]
        } else {
            b"survives"
        };
        let mut b = [0u8; 8];
        s.dpa_host_read(0, &mut b).unwrap();
        assert_eq!(&b, expect, "{rev:?}");
        // The mapping works again after the reset (v2 zapped and re-activated it).
        let map = dev.map_dpa().unwrap();
        use vm_memory::VolatileMemory;
        let mut got = [0u8; 8];
        map.as_volatile_slice()
            .offset(0)
            .unwrap()
            .copy_to(&mut got[..]);
        assert_eq!(&got, expect, "{rev:?}");
    }
}

#[test]
fn failed_reset_fences_and_a_later_reset_recovers() {
    for rev in REVISIONS {
        let s = sim(rev, BAR_LAYOUTS[0], OffsetLayout::Kernel);
        let (dev, _) = device(s.clone());
        dev.boot().unwrap();
        s.inject(Fault::ResetFails);
        let mut hooks = Hooks::default();
        let e = dev.reset(ResetKind::Device, &mut hooks).unwrap_err();
        assert_eq!(
            hooks.calls,
            ["quiesce"],
            "{rev:?}: memory must stay quiesced"
        );
        assert!(
            matches!(dev.current_state(), DeviceState::Fenced(_)),
            "{rev:?}: {e}"
        );
        // Fenced: all-ones, writes dropped, boot refused.
        assert_eq!(read32(&dev, 0x1000), u32::MAX);
        let before = s.stats().comp_regs_writes;
        dev.overlay().write(0x1204, &0u32.to_le_bytes());
        assert_eq!(s.stats().comp_regs_writes, before);
        assert!(matches!(dev.boot(), Err(DeviceError::Fenced(_))));
        s.clear_faults();
        let d = dev.reset(ResetKind::Device, &mut Hooks::default()).unwrap();
        assert!(d.locked && d.base == WINDOW_BASE, "{rev:?}");
        assert_eq!(read32(&dev, 0x1000) & 0xFFFF, 1);
    }
}

#[test]
fn decoder_not_recommitted_after_reset_is_reported_and_fenced() {
    // v2: after a function reset the hardware decoder is not committed again (firmware
    // did not re-commit); the kernel's region stays inactive and re-locking must fail.
    let cfg = SimConfig {
        post_reset_hw_committed: false,
        reset_on_open: false,
        ..SimConfig::new(UapiRevision::V2)
    };
    let s = Arc::new(SimDevice::new(cfg).unwrap());
    let (dev, _) = device(s.clone());
    dev.boot().unwrap();
    let e = dev
        .reset(ResetKind::Device, &mut Hooks::default())
        .unwrap_err();
    assert!(
        matches!(
            e,
            DeviceError::Lock(cxl_passthrough::runtime::HdmLockError::NotCommitted { .. })
        ),
        "{e:?}"
    );
    assert!(matches!(dev.current_state(), DeviceState::Fenced(_)));
    assert!(!s.dpa_active());
}

#[test]
fn restore_hook_failure_fences() {
    let s = sim(UapiRevision::V2, BAR_LAYOUTS[0], OffsetLayout::Kernel);
    let (dev, _) = device(s.clone());
    dev.boot().unwrap();
    let mut hooks = Hooks {
        fail_restore: true,
        ..Hooks::default()
    };
    let e = dev.reset(ResetKind::Device, &mut hooks).unwrap_err();
    assert!(matches!(
        e,
        DeviceError::Hook {
            step: HookStep::Restore,
            ..
        }
    ));
    assert!(dev.overlay().is_fenced());
}

#[test]
fn guest_initiated_cxl_reset_then_relock() {
    let cfg = SimConfig {
        cxl_reset_capable: true,
        cache_capable: true,
        ..SimConfig::new(UapiRevision::V2)
    };
    let s = Arc::new(SimDevice::new(cfg).unwrap());
    let (dev, desc) = device(s.clone());
    dev.boot().unwrap();
    // The guest writes Initiate CXL Reset (Control2 bit 2) through config space; the
    // VMM forwards it to the kernel, which resets the device and refreshes its shadow.
    let dvsec = desc.dvsec.unwrap().offset;
    let control2 = u64::from(dvsec) + 0x10;
    let n = dev
        .backend()
        .write(desc.config.file_offset, control2, &4u16.to_le_bytes())
        .unwrap();
    assert_eq!(n, 2);
    // After the kernel's reset the shadow no longer holds our lock (v2 re-reads it).
    let st = dev.decoder0().unwrap();
    assert!(
        !(st.locked && st.base == WINDOW_BASE),
        "shadow unexpectedly kept the lock: {st:?}"
    );
    let d = dev.relock_after_guest_reset(&mut Hooks::default()).unwrap();
    assert!(d.locked && d.base == WINDOW_BASE);
}

#[test]
fn guest_flr_is_recognised_and_relocked() {
    for rev in REVISIONS {
        let s = sim(rev, BAR_LAYOUTS[0], OffsetLayout::Kernel);
        let (dev, desc) = device(s.clone());
        dev.boot().unwrap();
        let cap = desc
            .pcie_cap
            .expect("simulated device has a PCIe capability");
        let devctl = u64::from(cap) + 8;
        let mut cur = [0u8; 2];
        dev.backend()
            .read(desc.config.file_offset, devctl, &mut cur)
            .unwrap();
        let flr = (u16::from_le_bytes(cur) | 1 << 15).to_le_bytes();
        assert_eq!(
            classify_config_write(&desc, devctl, &flr),
            Some(GuestReset::Flr),
            "{rev:?}"
        );
        assert_eq!(
            classify_config_write(&desc, devctl + 1, &flr[1..]),
            Some(GuestReset::Flr),
            "byte write"
        );
        assert_eq!(
            classify_config_write(&desc, devctl, &cur),
            None,
            "{rev:?}: no FLR bit"
        );
        // The VMM forwards the write (the kernel resets), then re-locks.
        dev.backend()
            .write(desc.config.file_offset, devctl, &flr)
            .unwrap();
        let d = dev.relock_after_guest_reset(&mut Hooks::default()).unwrap();
        assert!(d.locked && d.committed && d.base == WINDOW_BASE, "{rev:?}");
    }
}
