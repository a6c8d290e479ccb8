//! The device's "hardware" PCI configuration space: a 4 KiB image with per-byte write
//! masks (read-only IDs, BAR size probing), the PCIe capability and the three CXL DVSECs
//! (CXL Device, Register Locator, Flex Bus Port).

use super::config::SimConfig;
use super::layout::{
    AUX_BAR_SIZE, DEVICE_DVSEC, FLEX_BUS_DVSEC, Layout, PCIE_CAP, REGLOC_DVSEC, REGLOC_LEN,
};
use crate::regs::dvsec::{
    CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, DVSEC_ID_FLEX_BUS, DVSEC_ID_REGISTER_LOCATOR,
    DvsecCapability, DvsecControl, DvsecHeader1, DvsecRangeSizeLo, off,
};
use crate::regs::hdm::split_lo_hi;
use crate::regs::pci::CAP_ID_PCIE;
use crate::regs::pci::{
    BAR0, CAPABILITY_POINTER, CLASS_REVISION, COMMAND, COMMAND_MEMORY, EXT_CAP_ID_DVSEC,
    ExtCapHeader, STATUS_CAP_LIST, VENDOR_ID,
};
use crate::regs::pcie_cap::pcie;
use crate::regs::port_dvsec::{FlexBusBits, flex_bus};
use crate::regs::reglocator::{BLOCK_ID_COMPONENT, RegisterBlock};

/// Offset of Device Capabilities inside the PCIe capability.
pub const PCIE_DEVCAP: u16 = pcie::DEVICE_CAP;
/// Offset of Device Control inside the PCIe capability.
pub const PCIE_DEVCTL: u16 = pcie::DEVICE_CONTROL;
/// Device Capabilities: Function Level Reset capable.
const DEVCAP_FLR: u32 = 1 << 28;
/// Device Control: Initiate Function Level Reset (self-clearing).
pub const DEVCTL_BCR_FLR: u16 = crate::regs::pci::PCIE_DEVCTL_BCR_FLR;
/// BAR type bits: 64-bit memory.
const BAR_MEM64: u32 = crate::regs::pci::BAR_TYPE_MEM64;
/// Command register bits a driver may write (I/O, memory, master, parity, SERR, INTx off).
const COMMAND_WMASK: u16 = 0x0547;

/// The hardware config-space image.
#[derive(Clone, Debug)]
pub struct HwConfig {
    bytes: Vec<u8>,
    wmask: Vec<u8>,
}

impl HwConfig {
    /// Builds the power-on image (after firmware enumeration) for `cfg`.
    pub fn new(cfg: &SimConfig, layout: &Layout) -> Self {
        let mut c = Self {
            bytes: vec![0; 0x1000],
            wmask: vec![0; 0x1000],
        };
        c.put16(VENDOR_ID, cfg.vendor_id);
        c.put16(VENDOR_ID + 2, cfg.device_id);
        c.put16(COMMAND, COMMAND_MEMORY | 0x4);
        c.mask16(COMMAND, COMMAND_WMASK);
        c.put16(COMMAND + 2, STATUS_CAP_LIST);
        c.put32(CLASS_REVISION, (cfg.class_code << 8) | 0x01);
        c.mask8(0x0C, 0xFF);
        // Subsystem IDs mirror the device IDs.
        c.put16(0x2C, cfg.vendor_id);
        c.put16(0x2E, cfg.device_id);
        c.bytes[CAPABILITY_POINTER as usize] = PCIE_CAP as u8;
        c.mask8(0x3C, 0xFF);
        c.bytes[0x3D] = 1;
        // BARs: the 32-bit aux BAR and the 64-bit component BAR.
        let aux = BAR0 + 4 * u16::from(layout.aux_bar);
        c.put32(aux, 0xFE00_0000);
        c.mask32(aux, !(AUX_BAR_SIZE as u32 - 1));
        let comp = BAR0 + 4 * u16::from(layout.comp_bar);
        let size_mask = !(layout.bar_size - 1);
        let base = 0x80_0000_0000u64;
        c.put32(comp, base as u32 | BAR_MEM64);
        c.put32(comp + 4, (base >> 32) as u32);
        c.mask32(comp, size_mask as u32 & !0xF);
        c.mask32(comp + 4, (size_mask >> 32) as u32);
        // PCIe capability, endpoint, FLR capable.
        c.bytes[PCIE_CAP as usize] = CAP_ID_PCIE;
        c.put16(PCIE_CAP + 2, 0x0002);
        c.put32(PCIE_CAP + PCIE_DEVCAP, DEVCAP_FLR);
        c.put16(PCIE_CAP + PCIE_DEVCTL, 0x2810);
        c.mask16(PCIE_CAP + PCIE_DEVCTL, 0x7FFF | DEVCTL_BCR_FLR);
        // CXL Device DVSEC.
        let d = DEVICE_DVSEC;
        c.put32(d, ext_hdr(REGLOC_DVSEC));
        c.put32(d + off::HEADER1, dvsec_h1(2, off::LENGTH_REV2));
        c.put16(d + off::HEADER2, DVSEC_ID_CXL_DEVICE);
        let cap = DvsecCapability::new()
            .with_cache_capable(cfg.cache_capable)
            .with_io_capable(true)
            .with_mem_capable(true)
            .with_hdm_count(1)
            .with_cxl_reset_capable(cfg.cxl_reset_capable)
            .with_cxl_reset_timeout(2)
            .with_cxl_reset_mem_clr_capable(cfg.cxl_reset_capable);
        c.put16(d + off::CAPABILITY, cap.into_bits());
        let ctl = DvsecControl::new()
            .with_io_enable(true)
            .with_mem_enable(true)
            .with_cache_enable(cfg.cache_capable);
        c.put16(d + off::CONTROL, ctl.into_bits());
        c.put16(d + off::LOCK, u16::from(cfg.dvsec_config_locked));
        let (slo, shi) = split_lo_hi(cfg.dpa_size);
        let size_lo = DvsecRangeSizeLo::from_bits(slo)
            .with_memory_info_valid(true)
            .with_memory_active(true)
            .with_media_type(2);
        c.put32(d + off::range_size_hi(0), shi);
        c.put32(d + off::range_size_lo(0), size_lo.into_bits());
        let (blo, bhi) = split_lo_hi(cfg.host_hpa);
        c.put32(d + off::range_base_hi(0), bhi);
        c.put32(d + off::range_base_lo(0), blo);
        // Register Locator DVSEC with one entry: the component block.
        let r = REGLOC_DVSEC;
        c.put32(r, ext_hdr(FLEX_BUS_DVSEC));
        c.put32(r + off::HEADER1, dvsec_h1(0, REGLOC_LEN));
        c.put16(r + off::HEADER2, DVSEC_ID_REGISTER_LOCATOR);
        let (lo, hi) = RegisterBlock {
            bar: layout.comp_bar,
            block_id: BLOCK_ID_COMPONENT,
            offset: layout.comp_off,
        }
        .encode();
        c.put32(r + 0x0C, lo);
        c.put32(r + 0x10, hi);
        // Flex Bus Port DVSEC (last): read-only, the link trained with every capability.
        let f = FLEX_BUS_DVSEC;
        c.put32(f, ext_hdr(0));
        c.put32(
            f + off::HEADER1,
            dvsec_h1(flex_bus::REVISION, flex_bus::LENGTH),
        );
        c.put16(f + off::HEADER2, DVSEC_ID_FLEX_BUS);
        let link = device_flex_bus(cfg);
        for reg in [flex_bus::CAPABILITY, flex_bus::CONTROL, flex_bus::STATUS] {
            c.put16(f + reg, link.into_bits());
        }
        c
    }

    /// Byte at `off` (0 outside config space).
    pub fn byte(&self, off: u16) -> u8 {
        self.bytes.get(usize::from(off)).copied().unwrap_or(0)
    }

    /// Little-endian 16-bit value at `off`.
    pub fn get16(&self, off: u16) -> u16 {
        u16::from_le_bytes([self.byte(off), self.byte(off.wrapping_add(1))])
    }

    /// Little-endian 32-bit value at `off`.
    pub fn get32(&self, off: u16) -> u32 {
        u32::from(self.get16(off)) | u32::from(self.get16(off.wrapping_add(2))) << 16
    }

    /// Stores a 16-bit value ignoring the write mask (hardware-internal update).
    pub fn put16(&mut self, off: u16, v: u16) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            if let Some(x) = self.bytes.get_mut(usize::from(off) + i) {
                *x = b;
            }
        }
    }

    /// Stores a 32-bit value ignoring the write mask.
    pub fn put32(&mut self, off: u16, v: u32) {
        self.put16(off, v as u16);
        self.put16(off.wrapping_add(2), (v >> 16) as u16);
    }

    fn mask8(&mut self, off: u16, m: u8) {
        if let Some(x) = self.wmask.get_mut(usize::from(off)) {
            *x = m;
        }
    }

    fn mask16(&mut self, off: u16, m: u16) {
        let [a, b] = m.to_le_bytes();
        self.mask8(off, a);
        self.mask8(off + 1, b);
    }

    fn mask32(&mut self, off: u16, m: u32) {
        self.mask16(off, m as u16);
        self.mask16(off + 2, (m >> 16) as u16);
    }

    /// A bus write of `data` at `off`: only writable bits change. Returns whether the
    /// write asked for a Function Level Reset (the FLR bit self-clears).
    pub fn write(&mut self, off: u16, data: &[u8]) -> bool {
        for (i, &b) in data.iter().enumerate() {
            let o = usize::from(off) + i;
            if let (Some(x), Some(m)) = (self.bytes.get(o), self.wmask.get(o)) {
                let nv = (x & !m) | (b & m);
                self.bytes[o] = nv;
            }
        }
        let devctl = PCIE_CAP + PCIE_DEVCTL;
        let flr = self.get16(devctl) & DEVCTL_BCR_FLR != 0;
        if flr {
            let v = self.get16(devctl) & !DEVCTL_BCR_FLR;
            self.put16(devctl, v);
        }
        flr
    }

    /// Reads `buf.len()` bytes at `off`.
    pub fn read(&self, off: u16, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.byte(off.wrapping_add(i as u16));
        }
    }
}

/// The device's Flex Bus Port Capability, Control and Status: CXL.io, CXL.mem and
/// 68B-flit/VH (QEMU's 0x26), plus CXL.cache for a cache-capable device.
pub fn device_flex_bus(cfg: &SimConfig) -> FlexBusBits {
    FlexBusBits::new()
        .with_cache(cfg.cache_capable)
        .with_io(true)
        .with_mem(true)
        .with_flit68_vh(true)
}

fn ext_hdr(next: u16) -> u32 {
    ExtCapHeader::new()
        .with_id(EXT_CAP_ID_DVSEC)
        .with_version(1)
        .with_next(next)
        .into_bits()
}

fn dvsec_h1(revision: u8, length: u16) -> u32 {
    DvsecHeader1::new()
        .with_vendor(CXL_VENDOR_ID)
        .with_revision(revision)
        .with_length(length)
        .into_bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::pci::find_dvsec;

    fn find(c: &HwConfig, id: u16) -> Option<(u16, u8, u16)> {
        let rd = |o: u16| Ok::<_, ()>(c.get32(o));
        find_dvsec(rd, CXL_VENDOR_ID, id)
            .expect("chain walks")
            .map(|l| (l.offset, l.revision, l.length))
    }

    #[test]
    fn flex_bus_dvsec_follows_the_register_locator_and_shows_the_trained_link() {
        for cache_capable in [true, false] {
            let cfg = SimConfig {
                cache_capable,
                ..SimConfig::default()
            };
            let c = HwConfig::new(&cfg, &Layout::new(&cfg, true));
            // Existing DVSECs keep their offsets.
            assert_eq!(find(&c, DVSEC_ID_CXL_DEVICE), Some((0x100, 2, 0x3C)));
            assert_eq!(find(&c, DVSEC_ID_REGISTER_LOCATOR), Some((0x140, 0, 0x14)));
            assert_eq!(find(&c, DVSEC_ID_FLEX_BUS), Some((0x160, 2, 0x20)));
            assert_eq!(ExtCapHeader::from_bits(c.get32(0x160)).next(), 0, "last");
            // QEMU's 0x26 (io, mem, 68B/VH) plus cache for a cache-capable device.
            let want = 0x26 | u16::from(cache_capable);
            for reg in [flex_bus::CAPABILITY, flex_bus::CONTROL, flex_bus::STATUS] {
                assert_eq!(c.get16(0x160 + reg), want, "reg {reg:#x}");
            }
        }
    }

    #[test]
    fn flex_bus_dvsec_is_read_only() {
        let cfg = SimConfig::default();
        let mut c = HwConfig::new(&cfg, &Layout::new(&cfg, true));
        let before: Vec<u8> = (0x160..0x180).map(|o| c.byte(o)).collect();
        assert!(!c.write(0x160, &[0xFF; 0x20]));
        let after: Vec<u8> = (0x160..0x180).map(|o| c.byte(o)).collect();
        assert_eq!(before, after);
    }
}
