//! The emulated CXL root port between a device's host bridge and the device.
//!
//! A Linux guest builds its CXL port hierarchy only for a device below a PCIe Root Port
//! of the ACPI0016 host bridge. The facade's layout of a CXL segment: the root port on
//! bus 0 (in the device's slot), secondary and subordinate bus [`SECONDARY_BUS`], and
//! the device as function 0 of device 0 there. [`root_port`] builds the port from the
//! topology plan; [`route_ecam`] tells a VMM whose PCI buses are flat where each
//! configuration access of the segment's ECAM goes.

use crate::plan::topology::TopologyPlan;
use crate::rootport::{CxlRootPort, DeviceBar, LinkParams, RootPortConfig, RootPortError};

/// PCI Vendor ID of the root port (Intel).
pub const ROOT_PORT_VENDOR_ID: u16 = 0x8086;
/// PCI Device ID of the root port: the ID of QEMU's emulated CXL root port, which Linux
/// has no quirk for.
pub const ROOT_PORT_DEVICE_ID: u16 = 0x7075;
/// PCIe Port Number of the root port: the host-bridge decoder's target.
pub const ROOT_PORT_NUMBER: u8 = 1;
/// The root port's secondary (and subordinate) bus, where the device sits.
pub const SECONDARY_BUS: u8 = 1;
/// ECAM bytes per bus.
pub const ECAM_BUS_SIZE: u64 = 1 << 20;
/// ECAM bytes of a CXL segment (buses 0 and [`SECONDARY_BUS`]).
pub const CXL_ECAM_SIZE: u64 = ECAM_BUS_SIZE * (SECONDARY_BUS as u64 + 1);
/// The link the root port reports (PCIe 5.0 x16, what CXL 2.0 devices train to).
pub const ROOT_PORT_LINK: LinkParams = LinkParams {
    speed: 5,
    width: 16,
};

/// Builds the root port for the device `plan` describes: its component block (BAR 0,
/// [`CxlRootPort::BAR_SIZE`] bytes) at `component_bar`, its memory windows covering
/// `device_bars` (the device's memory BARs as the VMM placed them).
pub fn root_port(
    plan: &TopologyPlan,
    component_bar: u64,
    device_bars: Vec<DeviceBar>,
) -> Result<CxlRootPort, RootPortError> {
    CxlRootPort::new(&RootPortConfig {
        vendor_id: ROOT_PORT_VENDOR_ID,
        device_id: ROOT_PORT_DEVICE_ID,
        revision: 0,
        primary_bus: 0,
        secondary_bus: SECONDARY_BUS,
        port_number: plan.root_port_number,
        component_bar,
        device_bars,
        link: ROOT_PORT_LINK,
        device_flex_bus: plan.device_flex_bus,
    })
}

/// Where a configuration access to a CXL segment's ECAM goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcamTarget {
    /// The segment's own bus-0 handler, at this ECAM offset (for the device: its slot on
    /// bus 0, where the VMM's flat PCI bus keeps it).
    Bus0(u64),
    /// The root port's configuration space ([`CxlRootPort::config_read`] / `write`), at
    /// this register offset.
    RootPort(u64),
    /// Nothing answers (reads all-ones, writes dropped).
    None,
}

/// Routes the ECAM offset `offset` of a CXL segment whose device is in bus-0 slot
/// `slot` of the VMM's flat bus: shown as the root port on bus 0 and as device 0 on
/// [`SECONDARY_BUS`].
pub fn route_ecam(slot: u8, offset: u64) -> EcamTarget {
    let bus = offset >> 20;
    let dev = (offset >> 15) & 0x1f;
    let func = (offset >> 12) & 0x7;
    let reg = offset & 0xfff;
    let slot = u64::from(slot);
    match bus {
        0 if dev == slot && func == 0 => EcamTarget::RootPort(reg),
        0 if dev == slot => EcamTarget::None,
        0 => EcamTarget::Bus0(offset),
        b if b == u64::from(SECONDARY_BUS) && dev == 0 && func == 0 => {
            EcamTarget::Bus0((slot << 15) | reg)
        }
        _ => EcamTarget::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecam(bus: u64, dev: u64, func: u64, reg: u64) -> u64 {
        bus << 20 | dev << 15 | func << 12 | reg
    }

    #[test]
    fn the_device_slot_shows_the_port_on_bus0_and_the_device_on_bus1() {
        assert_eq!(
            route_ecam(3, ecam(0, 3, 0, 0x40)),
            EcamTarget::RootPort(0x40)
        );
        assert_eq!(route_ecam(3, ecam(0, 3, 1, 0)), EcamTarget::None);
        assert_eq!(
            route_ecam(3, ecam(0, 2, 0, 8)),
            EcamTarget::Bus0(ecam(0, 2, 0, 8))
        );
        assert_eq!(
            route_ecam(3, ecam(1, 0, 0, 0x100)),
            EcamTarget::Bus0(ecam(0, 3, 0, 0x100))
        );
        assert_eq!(route_ecam(3, ecam(1, 1, 0, 0)), EcamTarget::None);
        assert_eq!(route_ecam(3, ecam(1, 0, 2, 0)), EcamTarget::None);
        assert_eq!(route_ecam(3, ecam(2, 0, 0, 0)), EcamTarget::None);
    }
}
