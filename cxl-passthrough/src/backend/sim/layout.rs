//! Fixed geometry of a simulated device: region table, file offsets, where the
//! component block, DVSECs and HDM decoders are.

use super::config::{OffsetLayout, SimConfig};
use crate::regs::component::{CM_OFFSET, COMPONENT_BLOCK_SIZE};
use crate::regs::hdm::hdm_block_size;
use crate::uapi::UapiRevision;
use crate::uapi::wire::{PCI_NUM_REGIONS, PCI_OFFSET_SHIFT};

/// Size of the ordinary 32-bit "device registers" BAR next to the component BAR.
pub const AUX_BAR_SIZE: u64 = 64 << 10;
/// Offset of the HDM decoder capability from the CM base (spec §3.4 example).
pub const HDM_CM_OFFSET: u64 = 0x200;
/// Offset of the RAS capability from the CM base (spec §3.4 example).
pub const RAS_CM_OFFSET: u64 = 0x100;
/// Config-space offset of the PCIe capability.
pub const PCIE_CAP: u16 = 0x40;
/// Config-space offset of the CXL Device DVSEC.
pub const DEVICE_DVSEC: u16 = 0x100;
/// Config-space offset of the Register Locator DVSEC.
pub const REGLOC_DVSEC: u16 = 0x140;
/// Length of the Register Locator DVSEC (one entry).
pub const REGLOC_LEN: u16 = 0x14;
/// Config-space offset of the Flex Bus Port DVSEC (after the Register Locator, last in
/// the chain; 16-byte aligned like the other two).
pub const FLEX_BUS_DVSEC: u16 = 0x160;
const _: () = assert!(FLEX_BUS_DVSEC >= REGLOC_DVSEC + REGLOC_LEN);
/// Size of the config region.
pub const CONFIG_SIZE: u64 = 0x1000;
/// Page size assumed for mmap checks.
pub const PAGE: u64 = 4096;

/// What a region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// BAR n.
    Bar(u8),
    /// Expansion ROM (absent).
    Rom,
    /// PCI config space.
    Config,
    /// VGA (absent).
    Vga,
    /// DPA / HDM memory (subtype 1).
    Dpa,
    /// Component-register shadow (subtype 2).
    CompRegs,
}

/// One VFIO region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionDesc {
    /// Region index.
    pub index: u32,
    /// Kind.
    pub kind: RegionKind,
    /// File offset reported by region info.
    pub offset: u64,
    /// Bytes of file offset space that belong to the region (for routing).
    pub span: u64,
    /// Region size.
    pub size: u64,
}

/// Derived geometry.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Region table, by index.
    pub regions: Vec<RegionDesc>,
    /// Whether the CXL personality is active (else plain vfio-pci).
    pub cxl: bool,
    /// Index of the DPA/HDM region.
    pub dpa_index: u32,
    /// Index of the COMP_REGS region.
    pub comp_index: u32,
    /// Component BAR index.
    pub comp_bar: u8,
    /// Component block offset in the BAR.
    pub comp_off: u64,
    /// Component BAR size.
    pub bar_size: u64,
    /// The auxiliary 32-bit BAR index.
    pub aux_bar: u8,
    /// File offset of the DPA region (the memfd ends with it).
    pub dpa_file_off: u64,
    /// DPA size.
    pub dpa_size: u64,
    /// Revision (what the kernel keeps from the BAR: the block or, v4, the HDM block).
    pub revision: UapiRevision,
    /// HDM block length.
    pub hdm_size: u64,
}

impl Layout {
    /// Computes the geometry; `cxl` selects the CXL personality.
    pub fn new(cfg: &SimConfig, cxl: bool) -> Self {
        let comp_bar = cfg.component_bar;
        let aux_bar = if comp_bar == 0 { 2 } else { 0 };
        let (dpa_index, comp_index) = match cfg.revision {
            // v4 registers the memory region first, then COMP_REGS.
            UapiRevision::V2 | UapiRevision::V4 => (PCI_NUM_REGIONS, PCI_NUM_REGIONS + 1),
            UapiRevision::V3 => (PCI_NUM_REGIONS + 1, PCI_NUM_REGIONS),
        };
        let hdm_size = hdm_block_size(cfg.decoder_count);
        let v2_comp_size = HDM_CM_OFFSET + hdm_size;
        let count = if cxl {
            PCI_NUM_REGIONS + 2
        } else {
            PCI_NUM_REGIONS
        };
        let mut regions = Vec::new();
        for index in 0..count {
            let (kind, size) = match index {
                0..=5 => {
                    let b = index as u8;
                    let size = if b == comp_bar {
                        cfg.bar_size
                    } else if b == aux_bar {
                        AUX_BAR_SIZE
                    } else {
                        0
                    };
                    (RegionKind::Bar(b), size)
                }
                6 => (RegionKind::Rom, 0),
                7 => (RegionKind::Config, CONFIG_SIZE),
                8 => (RegionKind::Vga, 0),
                i if i == dpa_index => (RegionKind::Dpa, cfg.dpa_size),
                _ => (
                    RegionKind::CompRegs,
                    match cfg.revision {
                        UapiRevision::V2 => v2_comp_size,
                        UapiRevision::V3 => COMPONENT_BLOCK_SIZE,
                        UapiRevision::V4 => hdm_size,
                    },
                ),
            };
            regions.push(RegionDesc {
                index,
                kind,
                offset: 0,
                span: 0,
                size,
            });
        }
        let dpa_file_off = match cfg.offset_layout {
            OffsetLayout::Kernel => {
                for r in &mut regions {
                    r.offset = u64::from(r.index) << PCI_OFFSET_SHIFT;
                    r.span = 1 << PCI_OFFSET_SHIFT;
                }
                u64::from(dpa_index) << PCI_OFFSET_SHIFT
            }
            OffsetLayout::Packed => {
                const SLOT: u64 = 1 << 20;
                let mut cursor = SLOT;
                for r in regions.iter_mut().filter(|r| r.kind != RegionKind::Dpa) {
                    r.offset = cursor;
                    r.span = r.size.max(PAGE).div_ceil(SLOT) * SLOT;
                    cursor += r.span;
                }
                let dpa_off = cursor.div_ceil(2 * SLOT) * 2 * SLOT;
                if let Some(r) = regions.iter_mut().find(|r| r.kind == RegionKind::Dpa) {
                    r.offset = dpa_off;
                    r.span = cfg.dpa_size;
                }
                dpa_off
            }
        };
        Self {
            regions,
            cxl,
            dpa_index,
            comp_index,
            comp_bar,
            comp_off: cfg.component_offset(),
            revision: cfg.revision,
            bar_size: cfg.bar_size,
            aux_bar,
            dpa_file_off,
            dpa_size: cfg.dpa_size,
            hdm_size,
        }
    }

    /// The region whose file range holds `file_offset`, and the offset inside it.
    pub fn route(&self, file_offset: u64) -> Option<(RegionDesc, u64)> {
        self.regions
            .iter()
            .find(|r| file_offset >= r.offset && file_offset - r.offset < r.span)
            .map(|r| (*r, file_offset - r.offset))
    }

    /// The region with `index`.
    pub fn region(&self, index: u32) -> Option<RegionDesc> {
        self.regions.get(index as usize).copied()
    }

    /// End of the component block in the BAR.
    pub fn comp_end(&self) -> u64 {
        self.comp_off + COMPONENT_BLOCK_SIZE
    }

    /// The BAR range the CXL personality keeps from mmap and raw access: the component
    /// block (v2, v3) or only the HDM block (v4 §2.4), byte exact.
    pub fn excluded(&self) -> (u64, u64) {
        match self.revision {
            UapiRevision::V4 => {
                let hdm = self.comp_off + CM_OFFSET + HDM_CM_OFFSET;
                (hdm, hdm + self.hdm_size)
            }
            _ => (self.comp_off, self.comp_end()),
        }
    }

    /// Whether the CXL personality carves the block out of the component BAR.
    pub fn carves(&self, bar: u8) -> bool {
        self.cxl && bar == self.comp_bar
    }

    /// Length of the backing memfd: the DPA region is last.
    pub fn file_len(&self) -> u64 {
        self.dpa_file_off + self.dpa_size
    }
}
