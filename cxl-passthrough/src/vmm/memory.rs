//! Device memory in the guest: the [`MemorySlots`] a VMM implements (its memory slots
//! and, for DMA, its IOMMU mappings), and [`GuestMapping`], one host mapping of the
//! device shown to the guest at one guest-physical address.
//!
//! A [`GuestMapping`] is the [`MemoryHooks`] of a reset: it takes the memory away from
//! the guest before the device resets and gives it back after the re-lock.

use std::sync::Arc;

use log::info;
use vm_memory::MmapRegion;

use super::error::VmmError;
use crate::runtime::{CxlDevice, HookError, MemoryHooks};

/// The VMM's guest memory slots (model: KVM user memory regions).
pub trait MemorySlots {
    /// The VMM's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Shows `region` to the guest at `gpa`. The caller keeps `region` mapped until
    /// [`MemorySlots::unmap`] of the same `gpa` returned.
    fn map(&mut self, gpa: u64, region: &MmapRegion) -> Result<(), Self::Error>;

    /// Takes the memory at `gpa` (mapped from `region`) away from the guest.
    fn unmap(&mut self, gpa: u64, region: &MmapRegion) -> Result<(), Self::Error>;
}

/// The VMM's DMA mappings (model: VFIO type-1 / iommufd IOAS maps), so that other
/// passed-through devices reach the device memory at its guest-physical address.
pub trait DmaMapper {
    /// The VMM's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Maps `region` at I/O virtual address `iova`. The caller keeps `region` mapped
    /// for the VM's lifetime.
    fn dma_map(&mut self, iova: u64, region: &MmapRegion) -> Result<(), Self::Error>;
}

/// One host mapping of the device shown to the guest at `gpa` through `slots`; taken
/// away from the guest when dropped.
#[derive(Debug)]
pub struct GuestMapping<S: MemorySlots> {
    slots: S,
    region: Arc<MmapRegion>,
    gpa: u64,
    mapped: bool,
}

impl<S: MemorySlots> GuestMapping<S> {
    /// Maps `region` at `gpa`; the whole range must fit below 2^64.
    pub fn new(slots: S, region: MmapRegion, gpa: u64) -> Result<Self, VmmError> {
        let len = region.size() as u64;
        if gpa.checked_add(len).is_none() {
            return Err(VmmError::AddressOverflow {
                what: "guest mapping",
                base: gpa,
                offset: len,
            });
        }
        let mut m = Self {
            slots,
            region: Arc::new(region),
            gpa,
            mapped: false,
        };
        m.map().map_err(|source| VmmError::Map {
            what: "device memory",
            source,
        })?;
        Ok(m)
    }

    /// Maps the device memory of `dev` at its window.
    pub fn device_memory(dev: &CxlDevice, slots: S) -> Result<Self, VmmError> {
        let region = dev.map_dpa().map_err(VmmError::Device)?;
        let m = Self::new(slots, region, dev.window().base)?;
        info!(
            "cxl: device memory mapped at {:#x}+{:#x}",
            m.gpa,
            m.region.size()
        );
        Ok(m)
    }

    /// Maps every directly mapped area of the component BAR of `dev`, for the BAR at
    /// `bar_gpa`; `slots` makes the [`MemorySlots`] of each area.
    pub fn bar_areas(
        dev: &CxlDevice,
        bar_gpa: u64,
        mut slots: impl FnMut() -> S,
    ) -> Result<Vec<Self>, VmmError> {
        dev.map_sparse()
            .map_err(VmmError::Device)?
            .into_iter()
            .map(|(area, region)| {
                let gpa = bar_gpa
                    .checked_add(area.offset)
                    .ok_or(VmmError::AddressOverflow {
                        what: "component BAR area",
                        base: bar_gpa,
                        offset: area.offset,
                    })?;
                Self::new(slots(), region, gpa)
            })
            .collect()
    }

    /// Also maps the memory for DMA at its guest-physical address.
    pub fn dma_map(&self, dma: &mut impl DmaMapper) -> Result<(), VmmError> {
        dma.dma_map(self.gpa, &self.region)
            .map_err(|e| VmmError::Map {
                what: "device memory for DMA",
                source: HookError::new(e),
            })
    }

    /// Shows the memory at `gpa` instead (the guest moved the BAR that holds it): taken
    /// away at the old address, given at the new one if the guest saw it. On failure the
    /// guest sees it at neither address.
    pub fn move_to(&mut self, gpa: u64) -> Result<(), VmmError> {
        let was_mapped = self.mapped;
        let map_err = |source| VmmError::Map {
            what: "moved memory",
            source,
        };
        self.unmap().map_err(map_err)?;
        self.gpa = gpa;
        if was_mapped {
            self.map().map_err(map_err)?;
        }
        Ok(())
    }

    /// The host mapping.
    pub fn region(&self) -> &Arc<MmapRegion> {
        &self.region
    }

    /// Guest-physical base.
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// Whether the guest sees the memory now.
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    /// The VMM's slots.
    pub fn slots(&self) -> &S {
        &self.slots
    }

    fn map(&mut self) -> Result<(), HookError> {
        if !self.mapped {
            self.slots
                .map(self.gpa, &self.region)
                .map_err(HookError::new)?;
            self.mapped = true;
        }
        Ok(())
    }

    fn unmap(&mut self) -> Result<(), HookError> {
        if self.mapped {
            self.slots
                .unmap(self.gpa, &self.region)
                .map_err(HookError::new)?;
            self.mapped = false;
        }
        Ok(())
    }
}

/// Dropping a mapping the guest still sees takes it away first: the host mapping is
/// about to go, and a slot left behind would point the guest at freed host memory.
impl<S: MemorySlots> Drop for GuestMapping<S> {
    fn drop(&mut self) {
        if let Err(e) = self.unmap() {
            log::error!(
                "cxl: the VMM could not unmap {:#x}+{:#x} before the host mapping goes: {}",
                self.gpa,
                self.region.size(),
                crate::errors::Chain(&e)
            );
        }
    }
}

impl<S: MemorySlots> MemoryHooks for GuestMapping<S> {
    fn quiesce(&mut self) -> Result<(), HookError> {
        self.unmap()
    }

    fn restore(&mut self) -> Result<(), HookError> {
        self.map()
    }
}

/// Every mapping of a device (its memory and its BAR areas) around a reset.
impl<S: MemorySlots> MemoryHooks for Vec<GuestMapping<S>> {
    fn quiesce(&mut self) -> Result<(), HookError> {
        self.iter_mut().try_for_each(GuestMapping::unmap)
    }

    fn restore(&mut self) -> Result<(), HookError> {
        self.iter_mut().try_for_each(GuestMapping::map)
    }
}
