//! The DPA / HDM memory region: device memory in the memfd, its v2 active gate and the
//! zap (truncate the memfd so mappings SIGBUS, keeping the data aside) and restore.

use super::config::Errno;
use crate::sys::memfd::Memfd;

/// Device-memory state.
#[derive(Clone, Debug, Default)]
pub struct DpaState {
    /// v2 `region_active`.
    pub active: bool,
    /// Data kept aside while the region is zapped: `(dpa offset, bytes)`, applied in
    /// order. `None` when the memory is live in the memfd.
    saved: Option<Vec<(u64, Vec<u8>)>>,
}

impl DpaState {
    /// Whether the memfd currently lacks the DPA pages (mappings SIGBUS).
    pub fn zapped(&self) -> bool {
        self.saved.is_some()
    }

    /// Cuts the DPA off the memfd, keeping its populated pages aside.
    pub fn zap(&mut self, mem: &Memfd, base: u64, size: u64) -> Result<(), Errno> {
        if self.saved.is_some() {
            return Ok(());
        }
        let mut saved = Vec::new();
        for (o, len) in mem.data_extents(base, base + size)? {
            let len = usize::try_from(len).map_err(|_| Errno::EIO)?;
            let mut b = vec![0u8; len];
            mem.read_full(&mut b, o)?;
            saved.push((o - base, b));
        }
        mem.set_len(base)?;
        self.saved = Some(saved);
        Ok(())
    }

    /// Puts the DPA back in the memfd with its data.
    pub fn restore(&mut self, mem: &Memfd, base: u64, size: u64) -> Result<(), Errno> {
        let Some(saved) = self.saved.take() else {
            return Ok(());
        };
        mem.set_len(base + size)?;
        for (o, b) in saved {
            mem.write_full(&b, base + o)?;
        }
        Ok(())
    }

    /// Clears device memory (CXL reset with Mem_Clr).
    pub fn clear(&mut self, mem: &Memfd, base: u64, size: u64) -> Result<(), Errno> {
        match &mut self.saved {
            Some(s) => s.clear(),
            None => {
                mem.set_len(base)?;
                mem.set_len(base + size)?;
            }
        }
        Ok(())
    }

    /// Host view of device memory.
    pub fn host_read(&self, mem: &Memfd, base: u64, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        match &self.saved {
            None => Ok(mem.read_full(buf, base + off)?),
            Some(saved) => {
                buf.fill(0);
                let end = off + buf.len() as u64;
                for (o, b) in saved {
                    let bend = o + b.len() as u64;
                    let (lo, hi) = (off.max(*o), end.min(bend));
                    if lo < hi {
                        let dst = &mut buf[(lo - off) as usize..(hi - off) as usize];
                        dst.copy_from_slice(&b[(lo - o) as usize..(hi - o) as usize]);
                    }
                }
                Ok(())
            }
        }
    }

    /// Host write into device memory.
    pub fn host_write(
        &mut self,
        mem: &Memfd,
        base: u64,
        off: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        match &mut self.saved {
            None => Ok(mem.write_full(data, base + off)?),
            Some(saved) => {
                saved.push((off, data.to_vec()));
                Ok(())
            }
        }
    }
}
