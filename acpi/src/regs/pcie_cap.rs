//! The PCI Express capability (capability ID [`crate::regs::pci::CAP_ID_PCIE`]): register
//! offsets and the bitfields of the registers a root port presents (PCIe Base r6.x §7.5.3).

use bitfield_struct::bitfield;

/// PCI Express capability register offsets, relative to the capability.
pub mod pcie {
    /// PCI Express Capabilities register (16-bit).
    pub const CAPABILITIES: u16 = 0x02;
    /// Device Capabilities.
    pub const DEVICE_CAP: u16 = 0x04;
    /// Device Control (16-bit).
    pub const DEVICE_CONTROL: u16 = crate::regs::pci::PCIE_DEVICE_CONTROL;
    /// Link Capabilities (Port Number in bits 31:24).
    pub const LINK_CAP: u16 = 0x0C;
    /// Link Control (16-bit).
    pub const LINK_CONTROL: u16 = 0x10;
    /// Link Status (16-bit).
    pub const LINK_STATUS: u16 = 0x12;
    /// Root Control (16-bit).
    pub const ROOT_CONTROL: u16 = 0x1C;
    /// Link Capabilities 2.
    pub const LINK_CAP2: u16 = 0x2C;
    /// Link Control 2 (16-bit).
    pub const LINK_CONTROL2: u16 = 0x30;
    /// Length of a version-2 PCI Express capability.
    pub const LENGTH: u16 = 0x3C;
}

/// Device/Port Type of a Root Port in the PCI Express Capabilities register.
pub const PORT_TYPE_ROOT_PORT: u8 = 0x4;
/// Version of the PCI Express capability structure.
pub const PCIE_CAP_VERSION: u8 = 2;

/// PCI Express Capabilities register.
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct PcieCapabilities {
    /// Capability version (2).
    #[bits(4)]
    pub version: u8,
    /// Device/Port Type (4 = Root Port).
    #[bits(4)]
    pub port_type: u8,
    /// Slot Implemented.
    pub slot_implemented: bool,
    /// Interrupt Message Number.
    #[bits(5)]
    pub interrupt_message: u8,
    #[bits(2)]
    __: u8,
}

/// Link Capabilities register.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct LinkCapabilities {
    /// Max Link Speed (1 = 2.5 GT/s … 6 = 64 GT/s).
    #[bits(4)]
    pub max_speed: u8,
    /// Maximum Link Width (lanes).
    #[bits(6)]
    pub max_width: u8,
    /// ASPM Support.
    #[bits(2)]
    pub aspm: u8,
    /// L0s exit latency.
    #[bits(3)]
    pub l0s_exit: u8,
    /// L1 exit latency.
    #[bits(3)]
    pub l1_exit: u8,
    /// Clock Power Management.
    pub clock_pm: bool,
    /// Surprise Down Error Reporting Capable.
    pub surprise_down: bool,
    /// Data Link Layer Link Active Reporting Capable.
    pub dll_active_reporting: bool,
    /// Link Bandwidth Notification Capability.
    pub bw_notification: bool,
    /// ASPM Optionality Compliance.
    pub aspm_optionality: bool,
    #[bits(1)]
    __: u8,
    /// Port Number: the CXL dport id, used in host-bridge decoder target lists.
    pub port_number: u8,
}

/// Link Status register.
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct LinkStatus {
    /// Current Link Speed.
    #[bits(4)]
    pub speed: u8,
    /// Negotiated Link Width.
    #[bits(6)]
    pub width: u8,
    #[bits(1)]
    __: u8,
    /// Link Training.
    pub training: bool,
    /// Slot Clock Configuration.
    pub slot_clock: bool,
    /// Data Link Layer Link Active.
    pub dll_active: bool,
    #[bits(2)]
    __: u8,
}
