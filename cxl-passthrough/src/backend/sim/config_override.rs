//! A simulated device whose configuration-space answers can turn hostile after boot.
//!
//! [`ConfigOverride`] delegates every call to a [`SimDevice`] except reads of the config
//! region, which — once [`ConfigOverride::serve`] says so — come from a replacement image
//! (zero beyond its end) and/or transfer only half of their bytes. Tests and fuzz targets
//! use it to check that code reading config space after boot (the topology reader)
//! survives a kernel that answers garbage.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::SimDevice;
use crate::backend::{Backend, MmapSource, ResetKind, Result};
use crate::regs::pci::CONFIG_SPACE_SIZE;

/// A [`Backend`] over a [`SimDevice`] with overridable config-space reads.
#[derive(Debug)]
pub struct ConfigOverride {
    sim: Arc<SimDevice>,
    config_offset: u64,
    image: Mutex<Option<Vec<u8>>>,
    /// Countdown to the config read that transfers half of its bytes (0: none).
    short_at: AtomicU32,
}

impl ConfigOverride {
    /// Wraps `sim`, whose config region starts at file offset `config_offset`; answers
    /// honestly until [`ConfigOverride::serve`] is called.
    pub fn new(sim: Arc<SimDevice>, config_offset: u64) -> Self {
        Self {
            sim,
            config_offset,
            image: Mutex::new(None),
            short_at: AtomicU32::new(0),
        }
    }

    /// From now on config reads come from `image` (`None`: from the simulator), and the
    /// `short_read`-th of them transfers only half of its bytes (0: none).
    pub fn serve(&self, image: Option<Vec<u8>>, short_read: u32) {
        self.short_at.store(short_read, Ordering::Relaxed);
        *self.image.lock().unwrap_or_else(PoisonError::into_inner) = image;
    }

    /// The whole config space as the simulator answers it (ignoring any override).
    pub fn honest_config(&self) -> Result<Vec<u8>> {
        let mut img = vec![0u8; usize::from(CONFIG_SPACE_SIZE)];
        let n = self.sim.read(self.config_offset, 0, &mut img)?;
        img.truncate(n);
        Ok(img)
    }
}

impl Backend for ConfigOverride {
    fn device_info(&self) -> Result<Vec<u8>> {
        self.sim.device_info()
    }

    fn region_info(&self, index: u32) -> Result<Vec<u8>> {
        self.sim.region_info(index)
    }

    fn read(&self, region: u64, off: u64, buf: &mut [u8]) -> Result<usize> {
        if region != self.config_offset {
            return self.sim.read(region, off, buf);
        }
        let n = {
            let guard = self.image.lock().unwrap_or_else(PoisonError::into_inner);
            match guard.as_ref() {
                None => None,
                Some(img) => {
                    for (i, b) in buf.iter_mut().enumerate() {
                        let at = usize::try_from(off).ok().and_then(|o| o.checked_add(i));
                        *b = at.and_then(|a| img.get(a)).copied().unwrap_or(0);
                    }
                    Some(buf.len())
                }
            }
        };
        let n = match n {
            Some(n) => n,
            None => self.sim.read(region, off, buf)?,
        };
        let left = self.short_at.load(Ordering::Relaxed);
        self.short_at
            .store(left.saturating_sub(1), Ordering::Relaxed);
        Ok(if left == 1 { n / 2 } else { n })
    }

    fn write(&self, region: u64, off: u64, buf: &[u8]) -> Result<usize> {
        self.sim.write(region, off, buf)
    }

    fn mmap_source(&self, region: u64) -> Result<MmapSource<'_>> {
        self.sim.mmap_source(region)
    }

    fn reset(&self, kind: ResetKind) -> Result<()> {
        self.sim.reset(kind)
    }
}
