//! The type-1 (PCI-to-PCI bridge) configuration header: register offsets and values
//! (PCI-to-PCI Bridge r1.2 §3.2, PCIe Base r6.x §7.5.1.3). Offsets shared with the
//! type-0 header (Vendor ID, Command, Class/Revision, BAR 0, Capabilities Pointer) are in
//! [`crate::regs::pci`].

use super::pci::BAR0;

/// Offset of the Device ID.
pub const DEVICE_ID: u16 = 0x02;
/// Offset of the Status register.
pub const STATUS: u16 = 0x06;
/// Offset of Cache Line Size.
pub const CACHE_LINE_SIZE: u16 = 0x0C;
/// Offset of Header Type.
pub const HEADER_TYPE: u16 = 0x0E;
/// Header Type value of a single-function type-1 (PCI-to-PCI bridge) header.
pub const HEADER_TYPE_BRIDGE: u8 = 0x01;
/// Class code of a PCI-to-PCI bridge (base 06, sub 04, interface 00).
pub const CLASS_PCI_BRIDGE: u32 = 0x06_04_00;
/// Offset of BAR 1 (upper half of the 64-bit BAR 0).
pub const BAR1: u16 = BAR0 + 4;
/// Offset of the Primary Bus Number.
pub const PRIMARY_BUS: u16 = 0x18;
/// Offset of the Secondary Bus Number.
pub const SECONDARY_BUS: u16 = 0x19;
/// Offset of the Subordinate Bus Number.
pub const SUBORDINATE_BUS: u16 = 0x1A;
/// Offset of Memory Base (non-prefetchable window, 16-bit).
pub const MEMORY_BASE: u16 = 0x20;
/// Offset of Memory Limit.
pub const MEMORY_LIMIT: u16 = 0x22;
/// Offset of Prefetchable Memory Base (16-bit).
pub const PREF_BASE: u16 = 0x24;
/// Offset of Prefetchable Memory Limit.
pub const PREF_LIMIT: u16 = 0x26;
/// Offset of Prefetchable Base Upper 32 Bits.
pub const PREF_BASE_UPPER: u16 = 0x28;
/// Offset of Prefetchable Limit Upper 32 Bits.
pub const PREF_LIMIT_UPPER: u16 = 0x2C;
/// Offset of Interrupt Line.
pub const INTERRUPT_LINE: u16 = 0x3C;
/// Offset of Bridge Control.
pub const BRIDGE_CONTROL: u16 = 0x3E;
/// Prefetchable Base/Limit type nibble: 64-bit addressing.
pub const PREF_TYPE_64: u16 = 0x1;
