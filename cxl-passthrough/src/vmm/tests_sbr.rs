//! A guest's Secondary Bus Reset through the emulated root port (Linux's `cxl_bus`
//! reset method, for a device without FLR) resets the device below through the facade
//! like a guest FLR: memory away, `VFIO_DEVICE_RESET`, decoder 0 re-locked, memory back.

use std::sync::Arc;

use vm_memory::VolatileMemory;

use super::tests::{Slots, WINDOW_AREA, boot};
use super::*;
use crate::backend::sim::{Fault, SimConfig, SimDevice};
use crate::regs::bridge::{BRIDGE_CONTROL, BRIDGE_CONTROL_SBR};
use crate::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_PORT_EXTENSIONS};
use crate::regs::pci::find_dvsec;
use crate::regs::port_dvsec::port_ext;
use crate::uapi::UapiRevision;

const PORT_BAR: u64 = 0xc000_0000;
const MARKER: &[u8; 8] = b"survives";

/// A booted simulated `rev` device, its simulator, and the root port above it.
fn device_below_port(rev: UapiRevision) -> (CxlDevice, Arc<SimDevice>, CxlRootPort) {
    let sim = Arc::new(SimDevice::new(SimConfig::new(rev)).expect("sim"));
    let (_, dev) = boot(rev, sim.clone());
    let plan = Platform::plan_topology(&dev).expect("topology");
    let port = root_port(
        &plan,
        PORT_BAR,
        vec![DeviceBar {
            base: super::tests::BAR_GPA,
            size: dev.desc().bar.size,
            prefetchable: true,
        }],
    )
    .expect("root port");
    (dev, sim, port)
}

fn cfg16(port: &CxlRootPort, at: u16) -> u16 {
    let mut b = [0u8; 2];
    port.config_read(u64::from(at), &mut b);
    u16::from_le_bytes(b)
}

fn cfg_write16(port: &CxlRootPort, at: u16, v: u16) -> ConfigWriteOutcome {
    port.config_write(u64::from(at), &v.to_le_bytes())
}

/// Linux's `cxl_reset_bus_function` up to the SBR assert: find the port's CXL
/// Extensions DVSEC, set Unmask SBR (it must read back, or `cxl_sbr_masked()` holds
/// and the reset fails with ENOTTY), assert SBR. Returns the outcome of the assert and
/// the Port Control offset.
fn guest_asserts_unmasked_sbr(port: &CxlRootPort) -> (ConfigWriteOutcome, u16) {
    let rd = |o: u16| {
        let mut b = [0u8; 4];
        port.config_read(u64::from(o), &mut b);
        Ok::<_, ()>(u32::from_le_bytes(b))
    };
    let ext = find_dvsec(rd, CXL_VENDOR_ID, DVSEC_ID_PORT_EXTENSIONS)
        .expect("chain")
        .expect("CXL Extensions DVSEC for Ports");
    let ctl = ext.offset + port_ext::CONTROL;
    let reg = cfg16(port, ctl);
    assert_eq!(reg & port_ext::CONTROL_UNMASK_SBR, 0, "masked at reset");
    let out = cfg_write16(port, ctl, reg | port_ext::CONTROL_UNMASK_SBR);
    assert_eq!(out, ConfigWriteOutcome::default());
    assert_eq!(
        cfg16(port, ctl) & port_ext::CONTROL_UNMASK_SBR,
        port_ext::CONTROL_UNMASK_SBR,
        "Unmask SBR reads back"
    );
    let bc = cfg16(port, BRIDGE_CONTROL);
    (
        cfg_write16(port, BRIDGE_CONTROL, bc | BRIDGE_CONTROL_SBR),
        ctl,
    )
}

fn dpa_bytes(dpa: &GuestMapping<Slots>) -> [u8; 8] {
    let mut got = [0u8; 8];
    dpa.region()
        .as_volatile_slice()
        .offset(0)
        .expect("in range")
        .copy_to(&mut got[..]);
    got
}

#[test]
fn a_guest_secondary_bus_reset_resets_and_relocks_the_device_below() {
    for rev in UapiRevision::ALL {
        let (dev, sim, port) = device_below_port(rev);
        let slots = Slots::default();
        let mut dpa = GuestMapping::device_memory(&dev, slots.clone()).expect("dpa");
        dpa.region()
            .as_volatile_slice()
            .offset(0)
            .expect("in range")
            .copy_from(&MARKER[..]);
        let resets = sim.stats().resets;

        // Masked (Unmask SBR = 0, how the port comes out of reset): no effect.
        let bc = cfg16(&port, BRIDGE_CONTROL);
        let out = cfg_write16(&port, BRIDGE_CONTROL, bc | BRIDGE_CONTROL_SBR);
        assert_eq!(out, ConfigWriteOutcome::default(), "{rev:?}");
        let _ = cfg_write16(&port, BRIDGE_CONTROL, bc);
        assert_eq!(sim.stats().resets, resets, "{rev:?}: masked SBR reset it");

        let (out, ctl) = guest_asserts_unmasked_sbr(&port);
        assert!(out.secondary_bus_reset && out.bar_move.is_none(), "{rev:?}");
        slots.log.lock().expect("log").clear();
        let outcome = secondary_bus_reset(&dev, &mut dpa);
        assert_eq!(outcome.kind, GuestReset::SecondaryBusReset);
        assert!(outcome.quiesce.is_ok(), "{rev:?}");
        let d = outcome.relock.expect("re-locked");
        assert!(d.committed && d.locked, "{rev:?}: {d:?}");
        assert_eq!(d.base, WINDOW_AREA, "{rev:?}");
        assert_eq!(dev.current_state(), DeviceState::Locked(d), "{rev:?}");
        let live = dev.decoder0().expect("decoder 0");
        assert!(live.locked && live.base == WINDOW_AREA, "{rev:?}: {live:?}");
        assert_eq!(sim.stats().resets, resets + 1, "{rev:?}: one VFIO reset");
        // The memory was away from the guest during the reset and is back.
        let len = dpa.region().size();
        assert_eq!(
            *slots.log.lock().expect("log"),
            vec![(false, WINDOW_AREA, len), (true, WINDOW_AREA, len)],
            "{rev:?}"
        );
        assert!(dpa.is_mapped());
        // v2/v3's reset keeps device memory; v4's is a CXL reset, which wipes it.
        let expect = if rev == UapiRevision::V4 {
            [0; 8]
        } else {
            *MARKER
        };
        assert_eq!(dpa_bytes(&dpa), expect, "{rev:?}");

        // Linux deasserts SBR and restores Port Control: nothing more happens.
        let bc = cfg16(&port, BRIDGE_CONTROL);
        let out = cfg_write16(&port, BRIDGE_CONTROL, bc & !BRIDGE_CONTROL_SBR);
        assert_eq!(out, ConfigWriteOutcome::default());
        let out = cfg_write16(&port, ctl, 0);
        assert_eq!(out, ConfigWriteOutcome::default());
        assert_eq!(sim.stats().resets, resets + 1, "{rev:?}");
    }
}

#[test]
fn a_failed_secondary_bus_reset_fences_the_device_like_a_failed_flr() {
    for rev in UapiRevision::ALL {
        let (dev, sim, port) = device_below_port(rev);
        let slots = Slots::default();
        let mut dpa = GuestMapping::device_memory(&dev, slots.clone()).expect("dpa");
        let (out, _) = guest_asserts_unmasked_sbr(&port);
        assert!(out.secondary_bus_reset);
        sim.inject(Fault::ResetFails);
        let outcome = secondary_bus_reset(&dev, &mut dpa);
        assert!(outcome.quiesce.is_ok());
        let err = outcome.relock.expect_err("the reset failed");
        assert!(
            matches!(err, crate::runtime::DeviceError::Backend(_)),
            "{rev:?}: {err:?}"
        );
        assert!(
            matches!(dev.current_state(), DeviceState::Fenced(_)),
            "{rev:?}"
        );
        assert!(
            !dpa.is_mapped(),
            "{rev:?}: a fenced device's memory stays away"
        );
        let mut b = [0u8; 4];
        dev.overlay().read(0x1000, &mut b);
        assert_eq!(b, [0xFF; 4], "{rev:?}: the fenced overlay reads all-ones");
        // The VMM's reset recovers the device, as after a failed FLR.
        let d = dev.reset(ResetKind::Device, &mut dpa).expect("recovers");
        assert!(d.locked && d.base == WINDOW_AREA, "{rev:?}");
        assert!(dpa.is_mapped());
    }
}
