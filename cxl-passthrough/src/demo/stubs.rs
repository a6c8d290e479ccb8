//! Small MMIO devices: the no-op baseline the trapped-access cost is compared with, and
//! a fixed register file used as a stand-in device in tests.

#[cfg(test)]
use std::collections::BTreeMap;
#[cfg(test)]
use std::sync::Mutex;

use vm_device::DeviceMmio;
use vm_device::bus::{MmioAddress, MmioAddressOffset};

/// Reads zero, ignores writes, does nothing else: the cheapest trapped access.
#[derive(Debug, Default)]
pub struct NoopDevice;

impl DeviceMmio for NoopDevice {
    fn mmio_read(&self, _base: MmioAddress, _offset: MmioAddressOffset, data: &mut [u8]) {
        data.fill(0);
    }
    fn mmio_write(&self, _base: MmioAddress, _offset: MmioAddressOffset, _data: &[u8]) {}
}

/// Dword registers with fixed values; reads of anything else are all-ones, writes are
/// recorded and otherwise ignored.
#[derive(Debug, Default)]
#[cfg(test)]
pub struct FixedRegs {
    regs: BTreeMap<u64, u32>,
    writes: Mutex<Vec<(u64, Vec<u8>)>>,
}

#[cfg(test)]
impl FixedRegs {
    /// Registers `(offset, value)`.
    pub fn new(regs: impl IntoIterator<Item = (u64, u32)>) -> Self {
        Self {
            regs: regs.into_iter().collect(),
            writes: Mutex::default(),
        }
    }

    /// Writes seen so far, as `(offset, bytes)`.
    pub fn writes(&self) -> Vec<(u64, Vec<u8>)> {
        self.writes
            .lock()
            .map(|w| w.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

#[cfg(test)]
impl DeviceMmio for FixedRegs {
    fn mmio_read(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        let aligned = offset & !3;
        let value = u64::from(self.regs.get(&aligned).copied().unwrap_or(u32::MAX))
            | u64::from(self.regs.get(&(aligned + 4)).copied().unwrap_or(u32::MAX)) << 32;
        let bytes = (value >> ((offset - aligned) * 8)).to_le_bytes();
        for (d, b) in data
            .iter_mut()
            .zip(bytes.iter().chain(std::iter::repeat(&0xFF)))
        {
            *d = *b;
        }
    }
    fn mmio_write(&self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        let mut w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        w.push((offset, data.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_regs_answer_known_dwords_and_all_ones_elsewhere() {
        let d = FixedRegs::new([(0x10, 0x1234_5678), (0x14, 0x9ABC_DEF0)]);
        let mut b4 = [0u8; 4];
        d.mmio_read(MmioAddress(0), 0x10, &mut b4);
        assert_eq!(u32::from_le_bytes(b4), 0x1234_5678);
        let mut b8 = [0u8; 8];
        d.mmio_read(MmioAddress(0), 0x10, &mut b8);
        assert_eq!(u64::from_le_bytes(b8), 0x9ABC_DEF0_1234_5678);
        let mut b2 = [0u8; 2];
        d.mmio_read(MmioAddress(0), 0x12, &mut b2);
        assert_eq!(u16::from_le_bytes(b2), 0x1234);
        d.mmio_read(MmioAddress(0), 0x40, &mut b4);
        assert_eq!(b4, [0xFF; 4]);
        d.mmio_write(MmioAddress(0), 0x10, &[1, 2, 3, 4]);
        assert_eq!(d.writes(), vec![(0x10, vec![1, 2, 3, 4])]);
        let mut n = [7u8; 4];
        NoopDevice.mmio_read(MmioAddress(0), 0, &mut n);
        assert_eq!(n, [0; 4]);
    }
}
