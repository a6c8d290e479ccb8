//! Dword access to the kernel's COMP_REGS shadow, addressed by component-block offset.
//!
//! v2 places the region's offset 0 at the CXL.cache/mem base (block + 0x1000) and sizes
//! it to the end of the HDM block; v3 places offset 0 at the block start and sizes it
//! 64 KiB; v4 places offset 0 at the HDM block and sizes it to that block.
//! [`CompRegs`] hides that difference: callers always use block offsets.
//!
//! v4 reads the live hardware block and absorbs writes, so for v4 the accessor is
//! [`CompRegs::emulated`]: the guest-visible block is a userspace [`HdmView`] seeded
//! from the live registers ([`CompRegs::reload`]), and the parts of the component block
//! outside the HDM block are forwarded to the BAR region, which v4 serves raw there.

use std::sync::{Arc, Mutex, MutexGuard};

use super::hdm_view::HdmView;
use crate::backend::{Backend, BackendError};

/// Result of a COMP_REGS access.
pub type Result<T> = std::result::Result<T, BackendError>;

/// Where a block offset lands in the COMP_REGS region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Inside the region at this region offset.
    Region(u64),
    /// Below the region (v2: the CXL.io part of the block, offsets < 0x1000).
    Below,
    /// At or beyond the region's end.
    Beyond,
}

/// The COMP_REGS region of one device.
#[derive(Clone)]
pub struct CompRegs {
    backend: Arc<dyn Backend>,
    file_offset: u64,
    size: u64,
    region_base_in_block: u64,
    /// v4: the guest-visible HDM block and the BAR (file offset, component block offset).
    emulation: Option<Emulation>,
}

#[derive(Clone)]
struct Emulation {
    view: Arc<Mutex<HdmView>>,
    bar_file_offset: u64,
    component_offset: u64,
}

impl std::fmt::Debug for CompRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompRegs")
            .field("file_offset", &self.file_offset)
            .field("size", &self.size)
            .field("region_base_in_block", &self.region_base_in_block)
            .field("emulated", &self.emulation.is_some())
            .finish()
    }
}

impl CompRegs {
    /// Creates an accessor for a COMP_REGS region at `file_offset` of `size` bytes whose
    /// offset 0 corresponds to block offset `region_base_in_block`.
    pub fn new(
        backend: Arc<dyn Backend>,
        file_offset: u64,
        size: u64,
        region_base_in_block: u64,
    ) -> Self {
        Self {
            backend,
            file_offset,
            size,
            region_base_in_block,
            emulation: None,
        }
    }

    /// v4: the region is read live and absorbs writes; serve the guest from a userspace
    /// HDM block instead (seeded by [`CompRegs::reload`]) and forward block offsets
    /// outside the region to the BAR at `bar_file_offset`, whose component block starts
    /// at `component_offset`.
    pub fn emulated(self, bar_file_offset: u64, component_offset: u64) -> Self {
        Self {
            emulation: Some(Emulation {
                view: Arc::new(Mutex::new(HdmView::default())),
                bar_file_offset,
                component_offset,
            }),
            ..self
        }
    }

    /// Whether the guest view is emulated (v4).
    pub fn is_emulated(&self) -> bool {
        self.emulation.is_some()
    }

    fn view(e: &Emulation) -> MutexGuard<'_, HdmView> {
        e.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// v4: re-seeds the emulated block from the live registers (at boot and after every
    /// reset: the kernel restores firmware's decoder). A no-op without emulation.
    pub fn reload(&self) -> Result<()> {
        let Some(e) = &self.emulation else {
            return Ok(());
        };
        let words = (0..self.size / 4)
            .map(|i| self.read_live(i * 4))
            .collect::<Result<Vec<u32>>>()?;
        *Self::view(e) = HdmView::seeded(words);
        Ok(())
    }

    /// Reads the dword at region offset `r` from the kernel, bypassing any emulation
    /// (v4: the live hardware register).
    pub fn read_live(&self, r: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        match self.backend.read(self.file_offset, r, &mut b)? {
            4 => Ok(u32::from_le_bytes(b)),
            n => Err(short("COMP_REGS read", r, n)),
        }
    }

    /// Whether block offsets outside the region are forwarded to the BAR (v4).
    #[inline]
    pub fn forwards_outside(&self) -> bool {
        self.emulation.is_some()
    }

    /// v4: reads `data.len()` bytes at block offset `block_offset` from the BAR region.
    pub fn read_outside(&self, block_offset: u64, data: &mut [u8]) -> Result<()> {
        let e = self.outside()?;
        let at = e.component_offset + block_offset;
        let n = self.backend.read(e.bar_file_offset, at, data)?;
        if n != data.len() {
            return Err(BackendError::Short {
                op: format!("component BAR read @{at:#x}"),
                done: n,
                wanted: data.len(),
            });
        }
        Ok(())
    }

    /// v4: writes `data` at block offset `block_offset` to the BAR region.
    pub fn write_outside(&self, block_offset: u64, data: &[u8]) -> Result<()> {
        let e = self.outside()?;
        let at = e.component_offset + block_offset;
        let n = self.backend.write(e.bar_file_offset, at, data)?;
        if n != data.len() {
            return Err(BackendError::Short {
                op: format!("component BAR write @{at:#x}"),
                done: n,
                wanted: data.len(),
            });
        }
        Ok(())
    }

    fn outside(&self) -> Result<&Emulation> {
        self.emulation.as_ref().ok_or_else(|| {
            BackendError::Invalid("component block outside COMP_REGS is not forwarded".into())
        })
    }

    /// Maps a block offset to the region.
    #[inline]
    pub fn slot(&self, block_offset: u64) -> Slot {
        match block_offset.checked_sub(self.region_base_in_block) {
            None => Slot::Below,
            Some(r) if r.checked_add(4).is_some_and(|e| e <= self.size) => Slot::Region(r),
            Some(_) => Slot::Beyond,
        }
    }

    /// Reads the dword at `block_offset` (4-byte aligned) from the region.
    pub fn read(&self, block_offset: u64) -> Result<u32> {
        let Slot::Region(r) = self.slot(block_offset) else {
            return Err(BackendError::Invalid(format!(
                "COMP_REGS read outside the region at {block_offset:#x}"
            )));
        };
        self.read_region(r)
    }

    /// Reads the dword at region offset `r` (from [`Slot::Region`]).
    #[inline]
    pub fn read_region(&self, r: u64) -> Result<u32> {
        if let Some(e) = &self.emulation {
            let v = Self::view(e);
            if v.is_seeded() {
                return Ok(v.read(r));
            }
        }
        self.read_live(r)
    }

    /// Writes the dword at `block_offset` (4-byte aligned) to the region.
    pub fn write(&self, block_offset: u64, value: u32) -> Result<()> {
        let Slot::Region(r) = self.slot(block_offset) else {
            return Err(BackendError::Invalid(format!(
                "COMP_REGS write outside the region at {block_offset:#x}"
            )));
        };
        self.write_region(r, value)
    }

    /// Writes the dword at region offset `r` (from [`Slot::Region`]).
    #[inline]
    pub fn write_region(&self, r: u64, value: u32) -> Result<()> {
        if let Some(e) = &self.emulation {
            let mut v = Self::view(e);
            if v.is_seeded() {
                v.write(r, value);
                return Ok(());
            }
        }
        let n = self
            .backend
            .write(self.file_offset, r, &value.to_le_bytes())?;
        if n != 4 {
            return Err(BackendError::Short {
                op: format!("COMP_REGS write @{r:#x}"),
                done: n,
                wanted: 4,
            });
        }
        Ok(())
    }
}

#[cold]
fn short(what: &str, r: u64, done: usize) -> BackendError {
    BackendError::Short {
        op: format!("{what} @{r:#x}"),
        done,
        wanted: 4,
    }
}
