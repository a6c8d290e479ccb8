//! The root port's configuration space: a byte image with a per-bit write mask, the
//! type-1 header (pre-assigned bus numbers and bridge windows, one 64-bit BAR for the
//! component block) and the PCI Express capability of a Root Port.
//!
//! Every byte not covered by the write mask is host-owned: guest writes to it are
//! ignored. Reads and writes of any size and alignment are served byte by byte.

use crate::regs::bridge::{
    BAR1, BRIDGE_CONTROL, BRIDGE_CONTROL_SBR, CACHE_LINE_SIZE, CLASS_PCI_BRIDGE, DEVICE_ID,
    HEADER_TYPE, HEADER_TYPE_BRIDGE, INTERRUPT_LINE, MEMORY_BASE, MEMORY_LIMIT, PREF_BASE,
    PREF_BASE_UPPER, PREF_LIMIT, PREF_LIMIT_UPPER, PREF_TYPE_64, PRIMARY_BUS, SECONDARY_BUS,
    STATUS, SUBORDINATE_BUS,
};
use crate::regs::component::COMPONENT_BLOCK_SIZE;
use crate::regs::pci::{
    BAR_TYPE_MEM64, BAR0, CAP_ID_PCIE, CAPABILITY_POINTER, CLASS_REVISION, COMMAND, COMMAND_MEMORY,
    CONFIG_SPACE_SIZE, STATUS_CAP_LIST, VENDOR_ID,
};
pub use crate::regs::pcie_cap::{
    LinkCapabilities, LinkStatus, PCIE_CAP_VERSION, PORT_TYPE_ROOT_PORT, PcieCapabilities,
};

/// Offset of the PCI Express capability.
pub const PCIE_CAP_AT: u16 = 0x40;

/// Command bits the guest may change: Memory Space, Bus Master, Parity Error Response,
/// SERR# Enable, Interrupt Disable. I/O Space stays 0 (no I/O BAR, no I/O window).
pub const COMMAND_WRITABLE: u16 = (1 << 1) | (1 << 2) | (1 << 6) | (1 << 8) | (1 << 10);
/// Command value at power-on, as firmware leaves a configured bridge: memory decode
/// and bus mastering on.
pub const COMMAND_INITIAL: u16 = COMMAND_MEMORY | (1 << 2);
/// Bridge Control bits the guest may change: Parity Error Response, SERR# Enable and
/// Secondary Bus Reset. Asserting SBR resets the device below only while the CXL Port
/// Extensions DVSEC's Unmask SBR is 1 ([`super::CxlRootPort::config_write`] reports it).
pub const BRIDGE_CONTROL_WRITABLE: u16 = (1 << 0) | (1 << 1) | BRIDGE_CONTROL_SBR;
/// Writable address bits of BAR 0 (a 64 KiB BAR).
pub const BAR_LO_WRITABLE: u32 = !(COMPONENT_BLOCK_SIZE as u32 - 1);
/// Bridge memory windows have 1 MiB granularity.
pub const WINDOW_GRANULE: u64 = 1 << 20;

/// The root port's policy for its PCI Express capability registers (offsets:
/// [`crate::regs::pcie_cap::pcie`], re-exported here).
pub mod pcie {
    pub use crate::regs::pcie_cap::pcie::*;

    /// Device Control bits the guest may change: error reporting enables, Relaxed
    /// Ordering, Max Payload Size, No Snoop, Max Read Request Size.
    pub const DEVICE_CONTROL_WRITABLE: u16 = 0x000F | 0x0010 | 0x00E0 | 0x0800 | 0x7000;
    /// Device Control at reset: Max Read Request Size 512 bytes.
    pub const DEVICE_CONTROL_INITIAL: u16 = 0x2000;
    /// Link Control bits the guest may change: Read Completion Boundary, Common Clock
    /// Configuration, Extended Synch. Link Disable and Retrain Link are host-owned.
    pub const LINK_CONTROL_WRITABLE: u16 = (1 << 3) | (1 << 6) | (1 << 7);
    /// Root Control bits the guest may change: System Error on correctable, non-fatal,
    /// fatal errors, PME Interrupt Enable.
    pub const ROOT_CONTROL_WRITABLE: u16 = 0x000F;
    /// Device Capabilities: Role-Based Error Reporting (bit 15), 128-byte max payload.
    pub const DEVICE_CAP_VALUE: u32 = 1 << 15;
}

/// A 4 KiB configuration space image with a write mask.
#[derive(Clone)]
pub struct ConfigSpace {
    data: Box<[u8; CONFIG_SPACE_SIZE as usize]>,
    wmask: Box<[u8; CONFIG_SPACE_SIZE as usize]>,
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSpace").finish_non_exhaustive()
    }
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self {
            data: Box::new([0; CONFIG_SPACE_SIZE as usize]),
            wmask: Box::new([0; CONFIG_SPACE_SIZE as usize]),
        }
    }
}

impl ConfigSpace {
    fn set_bytes(buf: &mut [u8], at: u16, bytes: &[u8]) {
        if let Some(dst) = buf.get_mut(usize::from(at)..usize::from(at) + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }

    /// Sets a byte (builder; out-of-range offsets are ignored).
    pub fn set_u8(&mut self, at: u16, v: u8) {
        Self::set_bytes(&mut self.data[..], at, &[v]);
    }

    /// Sets a little-endian word.
    pub fn set_u16(&mut self, at: u16, v: u16) {
        Self::set_bytes(&mut self.data[..], at, &v.to_le_bytes());
    }

    /// Sets a little-endian dword.
    pub fn set_u32(&mut self, at: u16, v: u32) {
        Self::set_bytes(&mut self.data[..], at, &v.to_le_bytes());
    }

    /// Marks the bits of the word at `at` that the guest may write.
    pub fn set_wmask_u16(&mut self, at: u16, mask: u16) {
        Self::set_bytes(&mut self.wmask[..], at, &mask.to_le_bytes());
    }

    /// Marks the bits of the dword at `at` that the guest may write.
    pub fn set_wmask_u32(&mut self, at: u16, mask: u32) {
        Self::set_bytes(&mut self.wmask[..], at, &mask.to_le_bytes());
    }

    /// Reads the little-endian dword at `at` (0 outside the space).
    pub fn u32_at(&self, at: u16) -> u32 {
        let mut b = [0u8; 4];
        if let Some(src) = self.data.get(usize::from(at)..usize::from(at) + 4) {
            b.copy_from_slice(src);
        }
        u32::from_le_bytes(b)
    }

    /// Reads the little-endian word at `at` (0 outside the space).
    pub fn u16_at(&self, at: u16) -> u16 {
        let mut b = [0u8; 2];
        if let Some(src) = self.data.get(usize::from(at)..usize::from(at) + 2) {
            b.copy_from_slice(src);
        }
        u16::from_le_bytes(b)
    }

    /// Guest read of `data.len()` bytes at `offset`: bytes past the 4 KiB space read
    /// 0xFF.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| self.data.get(o).copied())
                .unwrap_or(0xFF);
        }
    }

    /// Guest write of `data` at `offset`: only write-mask bits change; bytes past the
    /// space are dropped. Returns the number of bytes that hit a writable bit.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> usize {
        let mut hits = 0;
        for (i, b) in data.iter().enumerate() {
            let Some(o) = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
            else {
                continue;
            };
            let (Some(cur), Some(m)) = (self.data.get(o).copied(), self.wmask.get(o).copied())
            else {
                continue;
            };
            if m != 0 {
                hits += 1;
            }
            if let Some(slot) = self.data.get_mut(o) {
                *slot = (cur & !m) | (b & m);
            }
        }
        hits
    }
}

/// A guest-physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrRange {
    /// First byte.
    pub base: u64,
    /// Size in bytes (non-zero).
    pub size: u64,
}

impl AddrRange {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether two ranges share a byte.
    pub fn overlaps(&self, o: &AddrRange) -> bool {
        self.base < o.end() && o.base < self.end()
    }
}

/// The two bridge memory windows (`None` = window disabled).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeWindows {
    /// Non-prefetchable memory window (below 4 GiB, 1 MiB granularity).
    pub mem: Option<AddrRange>,
    /// 64-bit prefetchable memory window (1 MiB granularity).
    pub pref: Option<AddrRange>,
}

fn window_regs(w: Option<AddrRange>) -> (u64, u64) {
    // (base, limit) as register contents; a disabled window has base > limit.
    match w {
        Some(r) => (r.base, r.end() - 1),
        None => (WINDOW_GRANULE, 0),
    }
}

/// Addressing for [`install_header`].
#[derive(Clone, Copy, Debug)]
pub struct HeaderParams {
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision: u8,
    /// Primary (root) bus number.
    pub primary_bus: u8,
    /// Secondary = subordinate bus number (the device's bus).
    pub secondary_bus: u8,
    /// BAR 0 address (64 KiB aligned).
    pub bar: u64,
    /// Bridge windows.
    pub windows: BridgeWindows,
}

/// Writes the type-1 header.
pub fn install_header(cs: &mut ConfigSpace, p: &HeaderParams) {
    cs.set_u16(VENDOR_ID, p.vendor_id);
    cs.set_u16(DEVICE_ID, p.device_id);
    cs.set_u16(COMMAND, COMMAND_INITIAL);
    cs.set_wmask_u16(COMMAND, COMMAND_WRITABLE);
    cs.set_u16(STATUS, STATUS_CAP_LIST);
    cs.set_u32(
        CLASS_REVISION,
        CLASS_PCI_BRIDGE << 8 | u32::from(p.revision),
    );
    cs.set_wmask_u16(CACHE_LINE_SIZE, 0x00FF);
    cs.set_u8(HEADER_TYPE, HEADER_TYPE_BRIDGE);

    cs.set_u32(BAR0, (p.bar as u32 & BAR_LO_WRITABLE) | BAR_TYPE_MEM64);
    cs.set_u32(BAR1, (p.bar >> 32) as u32);
    cs.set_wmask_u32(BAR0, BAR_LO_WRITABLE);
    cs.set_wmask_u32(BAR1, u32::MAX);

    cs.set_u8(PRIMARY_BUS, p.primary_bus);
    cs.set_u8(SECONDARY_BUS, p.secondary_bus);
    cs.set_u8(SUBORDINATE_BUS, p.secondary_bus);

    // Window registers hold address bits 31:20 in bits 15:4.
    let field = |a: u64| ((a >> 16) as u16) & 0xFFF0;
    let (mb, ml) = window_regs(p.windows.mem);
    cs.set_u16(MEMORY_BASE, field(mb));
    cs.set_u16(MEMORY_LIMIT, field(ml));
    let (pb, pl) = window_regs(p.windows.pref);
    cs.set_u16(PREF_BASE, field(pb) | PREF_TYPE_64);
    cs.set_u16(PREF_LIMIT, field(pl) | PREF_TYPE_64);
    cs.set_u32(PREF_BASE_UPPER, (pb >> 32) as u32);
    cs.set_u32(PREF_LIMIT_UPPER, (pl >> 32) as u32);

    cs.set_u8(CAPABILITY_POINTER, PCIE_CAP_AT as u8);
    cs.set_wmask_u16(INTERRUPT_LINE, 0x00FF);
    cs.set_wmask_u16(BRIDGE_CONTROL, BRIDGE_CONTROL_WRITABLE);
}

/// Link parameters shown in Link Capabilities / Status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// Link speed (1 = 2.5 GT/s … 6 = 64 GT/s).
    pub speed: u8,
    /// Link width in lanes.
    pub width: u8,
}

/// Writes the PCI Express capability of a Root Port with `port_number`.
pub fn install_pcie_cap(cs: &mut ConfigSpace, port_number: u8, link: LinkParams) {
    let at = PCIE_CAP_AT;
    cs.set_u8(at, CAP_ID_PCIE);
    cs.set_u8(at + 1, 0);
    let caps = PcieCapabilities::new()
        .with_version(PCIE_CAP_VERSION)
        .with_port_type(PORT_TYPE_ROOT_PORT);
    cs.set_u16(at + pcie::CAPABILITIES, caps.into_bits());
    cs.set_u32(at + pcie::DEVICE_CAP, pcie::DEVICE_CAP_VALUE);
    cs.set_u16(at + pcie::DEVICE_CONTROL, pcie::DEVICE_CONTROL_INITIAL);
    cs.set_wmask_u16(at + pcie::DEVICE_CONTROL, pcie::DEVICE_CONTROL_WRITABLE);
    let lcap = LinkCapabilities::new()
        .with_max_speed(link.speed)
        .with_max_width(link.width)
        .with_dll_active_reporting(true)
        .with_aspm_optionality(true)
        .with_port_number(port_number);
    cs.set_u32(at + pcie::LINK_CAP, lcap.into_bits());
    cs.set_wmask_u16(at + pcie::LINK_CONTROL, pcie::LINK_CONTROL_WRITABLE);
    let lsta = LinkStatus::new()
        .with_speed(link.speed)
        .with_width(link.width)
        .with_dll_active(true);
    cs.set_u16(at + pcie::LINK_STATUS, lsta.into_bits());
    cs.set_wmask_u16(at + pcie::ROOT_CONTROL, pcie::ROOT_CONTROL_WRITABLE);
    // Supported Link Speeds Vector: bits 1..=speed.
    let speeds = ((1u32 << link.speed) - 1) << 1;
    cs.set_u32(at + pcie::LINK_CAP2, speeds);
    cs.set_u16(at + pcie::LINK_CONTROL2, u16::from(link.speed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_bit_positions() {
        assert_eq!(
            PcieCapabilities::new()
                .with_version(2)
                .with_port_type(4)
                .into_bits(),
            0x0042
        );
        assert_eq!(
            LinkCapabilities::new().with_port_number(7).into_bits(),
            0x0700_0000
        );
        assert_eq!(
            LinkCapabilities::new()
                .with_dll_active_reporting(true)
                .into_bits(),
            1 << 20
        );
        assert_eq!(LinkStatus::new().with_dll_active(true).into_bits(), 1 << 13);
        assert_eq!(BAR_LO_WRITABLE, 0xFFFF_0000);
    }

    #[test]
    fn masked_write_any_size() {
        let mut cs = ConfigSpace::default();
        cs.set_u32(0x10, 0x1234_5678);
        cs.set_wmask_u32(0x10, 0x00FF_FF00);
        assert_eq!(cs.write(0x0F, &[0xAA; 6]), 2);
        assert_eq!(cs.u32_at(0x10), 0x12AA_AA78);
        let mut out = [0u8; 3];
        cs.read(0xFFE, &mut out);
        assert_eq!(out, [0, 0, 0xFF]);
        assert_eq!(cs.write(u64::MAX, &[1, 2]), 0);
        cs.read(u64::MAX, &mut out);
        assert_eq!(out, [0xFF; 3]);
    }
}
