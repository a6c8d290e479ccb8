//! [`CxlSegment`]: the PCI segment a CXL device gets (one device per segment), as the
//! VMM routes it, and the ACPI host bridge that describes it.

use cxl_acpi::{HostBridge, IntxRoute, MmioWindow};

use super::root_port::SECONDARY_BUS;

/// One CXL device's PCI segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CxlSegment {
    /// Segment number (also the host bridge's `_UID`).
    pub segment: u16,
    /// 32-bit MMIO aperture `[start, end]` (inclusive; `end <= start`: none).
    pub mem32: (u64, u64),
    /// 64-bit MMIO aperture `[start, end]` (inclusive; `end <= start`: none).
    pub mem64: (u64, u64),
    /// Guest-physical base of the host bridge's component registers (CHBCR).
    pub chbcr_base: u64,
    /// Legacy INTx: the GSI that INTA of bus-0 slot `n` raises, for each slot `n` (empty:
    /// MSI only, no `_PRT`). The device's INTx swizzles through the root port onto the
    /// port's slot. A GSI is what `_PRT` names: an IOAPIC input on x86-64; on arm64 the
    /// GIC interrupt ID (INTID), so an SPI `n` is GSI `32 + n` (Linux takes a GIC `_PRT`
    /// GSI as level, active high).
    pub slot_gsis: Vec<u32>,
}

impl CxlSegment {
    /// The ACPI0016 host bridge of the segment: root bus 0 (the root port) and the
    /// port's secondary bus [`SECONDARY_BUS`] (the device).
    pub fn host_bridge(&self) -> HostBridge {
        HostBridge {
            uid: u32::from(self.segment),
            segment: self.segment,
            bus_start: 0,
            bus_end: SECONDARY_BUS,
            chbcr_base: self.chbcr_base,
            mmio32: aperture(self.mem32),
            mmio64: aperture(self.mem64),
            intx_routes: self
                .slot_gsis
                .iter()
                .zip(0u8..32)
                .map(|(&gsi, device)| IntxRoute {
                    device,
                    pin: 0,
                    gsi,
                })
                .collect(),
        }
    }
}

/// An inclusive aperture as an ACPI window (`None` when empty).
fn aperture((start, end): (u64, u64)) -> Option<MmioWindow> {
    (end > start).then(|| MmioWindow {
        base: start,
        size: end - start + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_bridge_covers_both_buses_the_apertures_and_inta_of_each_slot() {
        let seg = CxlSegment {
            segment: 2,
            mem32: (0xc000_0000, 0xcfff_ffff),
            mem64: (0, 0),
            chbcr_base: 0xfd00_0000,
            slot_gsis: vec![5, 6],
        };
        let hb = seg.host_bridge();
        assert_eq!((hb.uid, hb.segment, hb.bus_start, hb.bus_end), (2, 2, 0, 1));
        assert_eq!(
            hb.mmio32,
            Some(MmioWindow {
                base: 0xc000_0000,
                size: 0x1000_0000
            })
        );
        assert_eq!(hb.mmio64, None);
        assert_eq!(
            hb.intx_routes,
            vec![
                IntxRoute {
                    device: 0,
                    pin: 0,
                    gsi: 5
                },
                IntxRoute {
                    device: 1,
                    pin: 0,
                    gsi: 6
                }
            ]
        );
    }
}
