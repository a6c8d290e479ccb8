//! The CXL DVSECs of a CXL port (CXL r3.1 §8.1.5–§8.1.9): Flex Bus Port (ID 7), CXL
//! Extensions for Ports (ID 3), GPF for Ports (ID 4) and the Register Locator (ID 8)
//! length with one entry. Register offsets are relative to the DVSEC start.

use bitfield_struct::bitfield;

/// PCIe DVSEC for Flex Bus Port (ID 7), revision 2.
pub mod flex_bus {
    /// Revision.
    pub const REVISION: u8 = 2;
    /// Length in bytes.
    pub const LENGTH: u16 = 0x20;
    /// Flex Bus Port Capability (16-bit).
    pub const CAPABILITY: u16 = 0x0A;
    /// Flex Bus Port Control (16-bit).
    pub const CONTROL: u16 = 0x0C;
    /// Flex Bus Port Status (16-bit): what Linux's `is_cxl` reads.
    pub const STATUS: u16 = 0x0E;
    /// Received Modified TS Data Phase 1 (32-bit).
    pub const RECEIVED_TS: u16 = 0x10;
    /// Capability2 (32-bit).
    pub const CAPABILITY2: u16 = 0x14;
    /// Control2 (32-bit).
    pub const CONTROL2: u16 = 0x18;
    /// Status2 (32-bit).
    pub const STATUS2: u16 = 0x1C;
}

/// CXL Extensions DVSEC for Ports (ID 3), revision 0.
pub mod port_ext {
    /// Revision.
    pub const REVISION: u8 = 0;
    /// Length in bytes.
    pub const LENGTH: u16 = 0x28;
    /// Port Extension Status (16-bit).
    pub const STATUS: u16 = 0x0A;
    /// Port Control Extensions (16-bit): bit 0 Unmask SBR.
    pub const CONTROL: u16 = 0x0C;
}

/// GPF DVSEC for CXL Ports (ID 4), revision 0.
pub mod gpf {
    /// Revision.
    pub const REVISION: u8 = 0;
    /// Length in bytes.
    pub const LENGTH: u16 = 0x10;
    /// GPF Phase 1 Control (16-bit).
    pub const PHASE1_CONTROL: u16 = 0x0C;
    /// GPF Phase 2 Control (16-bit).
    pub const PHASE2_CONTROL: u16 = 0x0E;
}

/// Register Locator DVSEC (ID 8), revision 0, one entry.
pub mod reg_locator {
    use crate::regs::reglocator::{ENTRY_SIZE, FIRST_ENTRY};
    /// Revision.
    pub const REVISION: u8 = 0;
    /// Length in bytes (one Register Block entry).
    pub const LENGTH: u16 = FIRST_ENTRY + ENTRY_SIZE;
}

/// One register of the Flex Bus Port DVSEC (Capability, Control and Status share the
/// layout of the protocol and mode bits; bits that only exist in one of them are kept
/// as reserved here and never set by the root port).
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct FlexBusBits {
    /// CXL.cache capable / enable / enabled.
    pub cache: bool,
    /// CXL.io capable / enable / enabled.
    pub io: bool,
    /// CXL.mem capable / enable / enabled.
    pub mem: bool,
    #[bits(2)]
    __: u8,
    /// 68B Flit and VH capable / enable / enabled (CXL 2.0 "CXL2p0").
    pub flit68_vh: bool,
    /// Multi-Logical Device capable / enable / enabled.
    pub mld: bool,
    #[bits(6)]
    __: u8,
    /// Latency-optimized 256B flit capable / enable / enabled.
    pub lat_opt_256b: bool,
    /// PBR flit capable / enable / enabled.
    pub pbr_flit: bool,
    #[bits(1)]
    __: u8,
}

impl FlexBusBits {
    /// The link state a root port shows for a device whose own Flex Bus Port Status
    /// is `device`: the negotiated protocols (cache, mem) and flit modes (68B/VH,
    /// latency-optimized 256B, PBR) are those of the link, CXL.io is always on, and a
    /// root port is never an MLD port. Error and retimer bits are not mirrored.
    pub fn link_of(device: FlexBusBits) -> FlexBusBits {
        FlexBusBits::new()
            .with_cache(device.cache())
            .with_io(true)
            .with_mem(device.mem())
            .with_flit68_vh(device.flit68_vh())
            .with_lat_opt_256b(device.lat_opt_256b())
            .with_pbr_flit(device.pbr_flit())
    }
}

/// GPF Phase 1/2 Control register.
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct GpfPhaseControl {
    /// Timeout base.
    #[bits(4)]
    pub timeout_base: u8,
    #[bits(4)]
    __: u8,
    /// Timeout scale (0 = 1 µs … 7 = 10 s).
    #[bits(4)]
    pub timeout_scale: u8,
    #[bits(4)]
    __: u8,
}

impl GpfPhaseControl {
    /// The guest-writable bits (base and scale).
    pub const WRITABLE: u16 = 0x0F0F;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_bus_bit_positions_match_the_spec_table() {
        assert_eq!(FlexBusBits::new().with_cache(true).into_bits(), 1);
        assert_eq!(FlexBusBits::new().with_mem(true).into_bits(), 1 << 2);
        assert_eq!(FlexBusBits::new().with_flit68_vh(true).into_bits(), 1 << 5);
        assert_eq!(FlexBusBits::new().with_mld(true).into_bits(), 1 << 6);
        assert_eq!(
            FlexBusBits::new().with_lat_opt_256b(true).into_bits(),
            1 << 13
        );
        assert_eq!(FlexBusBits::new().with_pbr_flit(true).into_bits(), 1 << 14);
        assert_eq!(
            GpfPhaseControl::new()
                .with_timeout_base(0xF)
                .with_timeout_scale(0xF)
                .into_bits(),
            GpfPhaseControl::WRITABLE
        );
    }

    #[test]
    fn link_mirrors_protocols_and_drops_device_only_bits() {
        // A Type-2 device: cache + io + mem + 68B/VH, MLD and error bits set.
        let dev = FlexBusBits::from_bits(0x0027 | (1 << 6) | (1 << 9));
        assert_eq!(FlexBusBits::link_of(dev).into_bits(), 0x0027);
        // A mem-only device without io: io still shows enabled on the port.
        let dev = FlexBusBits::new().with_mem(true);
        assert_eq!(FlexBusBits::link_of(dev).into_bits(), 0x0006);
    }
}
