//! [`requester_id_maps`]: how the PCI requester IDs of a CXL segment map to MSI device
//! IDs (an IORT ID mapping or an FDT `msi-map` entry per bus) when the VMM's MSI routing
//! names a device `segment << 8 | devfn`, dropping the bus — as cloud-hypervisor's KVM
//! routing does on aarch64. A CXL segment has two buses; a map of bus 0 alone leaves the
//! device at `01:00.0` (requester ID 0x100) without an ITS device ID, so without MSI.

/// One range of requester IDs and the MSI device IDs they map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequesterIdMap {
    /// First requester ID (`bus << 8 | devfn`).
    pub rid_base: u32,
    /// Number of requester IDs (256: one bus).
    pub count: u32,
    /// Device ID of `rid_base`; the others follow one to one.
    pub devid_base: u32,
}

/// The maps of PCI segment `segment` with buses `0..=end_bus`: one per bus, each to the
/// device IDs `segment << 8 | devfn`. Bus 1 of a CXL segment holds only the device behind
/// the root port, and the root port has no MSI capability, so the shared device IDs of
/// the two buses never meet.
pub fn requester_id_maps(segment: u16, end_bus: u8) -> Vec<RequesterIdMap> {
    (0..=u32::from(end_bus))
        .map(|bus| RequesterIdMap {
            rid_base: bus << 8,
            count: 0x100,
            devid_base: u32::from(segment) << 8,
        })
        .collect()
}

/// The device ID `maps` give requester ID `rid`, if any map covers it.
pub fn device_id(maps: &[RequesterIdMap], rid: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let offset = rid.checked_sub(m.rid_base)?;
        (offset < m.count).then(|| m.devid_base.wrapping_add(offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::SECONDARY_BUS;

    /// cloud-hypervisor's aarch64 devid for a PCI address: segment << 8 | devfn.
    fn routed_devid(segment: u16, _bus: u8, devfn: u8) -> u32 {
        (u32::from(segment) << 8) | u32::from(devfn)
    }

    #[test]
    fn the_device_behind_the_root_port_gets_the_routed_device_id() {
        let maps = requester_id_maps(3, SECONDARY_BUS);
        assert_eq!(maps.len(), 2);
        let rid = u32::from(SECONDARY_BUS) << 8;
        assert_eq!(
            device_id(&maps, rid),
            Some(routed_devid(3, SECONDARY_BUS, 0))
        );
        // A bus-0 function (the root port in slot 4) keeps its own.
        assert_eq!(device_id(&maps, 4 << 3), Some(routed_devid(3, 0, 4 << 3)));
    }

    #[test]
    fn a_one_bus_segment_maps_bus_0_only() {
        let maps = requester_id_maps(1, 0);
        assert_eq!(
            maps,
            [RequesterIdMap {
                rid_base: 0,
                count: 0x100,
                devid_base: 0x100
            }]
        );
        assert_eq!(device_id(&maps, 0x100), None, "bus 1 is not mapped");
        assert_eq!(device_id(&maps, 0xff), Some(0x1ff));
    }
}
