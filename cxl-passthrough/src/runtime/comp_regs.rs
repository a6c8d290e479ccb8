//! Dword access to the kernel's COMP_REGS shadow, addressed by component-block offset.
//!
//! v2 places the region's offset 0 at the CXL.cache/mem base (block + 0x1000) and sizes
//! it to the end of the HDM block; v3 places offset 0 at the block start and sizes it
//! 64 KiB. [`CompRegs`] hides that difference: callers always use block offsets.

use std::sync::Arc;

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
}

impl std::fmt::Debug for CompRegs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompRegs")
            .field("file_offset", &self.file_offset)
            .field("size", &self.size)
            .field("region_base_in_block", &self.region_base_in_block)
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
        }
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
        let mut b = [0u8; 4];
        match self.backend.read(self.file_offset, r, &mut b)? {
            4 => Ok(u32::from_le_bytes(b)),
            n => Err(short("COMP_REGS read", r, n)),
        }
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
