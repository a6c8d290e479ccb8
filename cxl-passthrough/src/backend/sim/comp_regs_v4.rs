//! v4 COMP_REGS region (spec v4 §2.2): offset 0 = the HDM block, size = its length;
//! reads are live hardware (BASE = host HPA), writes are absorbed. Dword-aligned
//! position and count (checked first), `pos ≥ size` refused, count clamped.

use super::config::Errno;
use super::hdm::HdmRegs;

fn check(pos: u64, count: usize, size: u64) -> Result<usize, Errno> {
    if count == 0 {
        return Ok(0);
    }
    if !pos.is_multiple_of(4) || !count.is_multiple_of(4) || pos >= size {
        return Err(Errno::EINVAL);
    }
    Ok((count as u64).min(size - pos) as usize)
}

/// pread: the live registers.
pub fn read(hw: &HdmRegs, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let n = check(pos, buf.len(), hw.size())?;
    for (i, chunk) in buf[..n].chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&hw.read(pos + 4 * i as u64).to_le_bytes());
    }
    Ok(n)
}

/// pwrite: absorbed (nothing changes), the count is reported as written.
pub fn write(hw: &HdmRegs, pos: u64, buf: &[u8]) -> Result<usize, Errno> {
    check(pos, buf.len(), hw.size())
}
