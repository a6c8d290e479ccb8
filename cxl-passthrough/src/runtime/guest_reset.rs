//! Recognising resets a guest starts through config space.
//!
//! A VMM forwards guest config writes to the kernel, which performs FLR (PCIe Device
//! Control bit 15) and, with the NVIDIA reset series, CXL reset (DVSEC Control2 bit 2).
//! Before forwarding such a write the VMM quiesces the device memory; afterwards it calls
//! [`crate::runtime::CxlDevice::relock_after_guest_reset`]. [`classify_config_write`]
//! tells which writes those are.

use super::desc::DeviceDesc;
use crate::regs::dvsec::{DvsecCapability, DvsecControl2, off};
use crate::regs::pci::{PCIE_DEVCTL_BCR_FLR, PCIE_DEVICE_CONTROL};

/// A reset the guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestReset {
    /// Function Level Reset (PCIe Device Control: Initiate FLR).
    Flr,
    /// CXL reset (DVSEC Control2: Initiate CXL Reset) on a CXL-reset-capable device.
    CxlReset,
    /// Secondary Bus Reset asserted on the emulated root port above the device with
    /// Unmask SBR set (Linux's `cxl_bus` reset method, for a device without FLR);
    /// reported by [`crate::rootport::CxlRootPort::config_write`], never by
    /// [`classify_config_write`], and performed by the VMM as `VFIO_DEVICE_RESET`.
    SecondaryBusReset,
}

/// Whether writing `data` at config offset `offset` sets bit `mask` of the 16-bit
/// register at `reg`.
fn sets_bit(offset: u64, data: &[u8], reg: u16, mask: u16) -> bool {
    mask.to_le_bytes().iter().enumerate().any(|(i, &m)| {
        let byte = u64::from(reg) + i as u64;
        m != 0
            && byte
                .checked_sub(offset)
                .and_then(|k| data.get(usize::try_from(k).ok()?))
                .is_some_and(|&b| b & m != 0)
    })
}

/// Classifies a guest config-space write.
pub fn classify_config_write(desc: &DeviceDesc, offset: u64, data: &[u8]) -> Option<GuestReset> {
    if let Some(cap) = desc.pcie_cap
        && sets_bit(offset, data, cap + PCIE_DEVICE_CONTROL, PCIE_DEVCTL_BCR_FLR)
    {
        return Some(GuestReset::Flr);
    }
    let dvsec = desc.dvsec?;
    let capable = DvsecCapability::from_bits(dvsec.capability).cxl_reset_capable();
    let initiate = DvsecControl2::new()
        .with_initiate_cxl_reset(true)
        .into_bits();
    (capable && sets_bit(offset, data, dvsec.offset + off::CONTROL2, initiate))
        .then_some(GuestReset::CxlReset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_bit_at_every_width_and_alignment() {
        // Register at 0x58, mask bit 15 lives in byte 0x59 bit 7.
        assert!(sets_bit(0x58, &[0, 0x80], 0x58, 1 << 15));
        assert!(sets_bit(0x59, &[0x80], 0x58, 1 << 15));
        assert!(sets_bit(0x56, &[0, 0, 0, 0x80], 0x58, 1 << 15));
        assert!(!sets_bit(0x58, &[0xFF, 0x7F], 0x58, 1 << 15));
        assert!(!sets_bit(0x58, &[0x80], 0x58, 1 << 15));
        assert!(!sets_bit(0x5A, &[0xFF; 4], 0x58, 1 << 15));
        assert!(!sets_bit(u64::MAX, &[0xFF], 0x58, 1 << 15));
        assert!(!sets_bit(0x58, &[], 0x58, 1 << 15));
    }
}
