//! Host-side access to guest-visible memory: writing the host's pattern and checking the
//! guest's, through the same mapping the guest uses (no copies in between).

use vm_memory::{Bytes, MmapRegion, VolatileMemory};

use super::guest::pattern;

/// Where a pattern check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PatternCheck {
    /// Qwords compared.
    pub checked: u64,
    /// Qwords that differ.
    pub mismatches: u64,
    /// Offset of the first mismatch.
    pub first_mismatch: Option<u64>,
}

impl PatternCheck {
    /// Every compared qword matched (and at least one was compared).
    pub fn ok(&self) -> bool {
        self.checked > 0 && self.mismatches == 0
    }
}

fn usable_len(m: &MmapRegion, len: u64) -> u64 {
    len.min(m.size() as u64) & !7
}

/// Writes [`pattern`]`(offset, seed)` at every `stride` bytes of the first `len` bytes.
/// Returns the number of qwords written.
pub fn write_sparse(m: &MmapRegion, len: u64, stride: u64, seed: u64) -> u64 {
    let len = usable_len(m, len);
    let slice = m.as_volatile_slice();
    let mut n = 0;
    for off in (0..len.saturating_sub(7)).step_by(stride.max(8) as usize) {
        if slice.write_obj(pattern(off, seed), off as usize).is_ok() {
            n += 1;
        }
    }
    n
}

/// Compares every qword of the first `len` bytes with [`pattern`]`(offset, seed)`.
pub fn verify_all(m: &MmapRegion, len: u64, seed: u64) -> PatternCheck {
    const CHUNK: usize = 1 << 20;
    let len = usable_len(m, len);
    let mut check = PatternCheck {
        checked: 0,
        mismatches: 0,
        first_mismatch: None,
    };
    let slice = m.as_volatile_slice();
    let mut buf = vec![0u8; CHUNK];
    let mut base = 0u64;
    while base < len {
        let n = CHUNK.min((len - base) as usize);
        let Some(chunk) = buf.get_mut(..n) else { break };
        if slice.read_slice(chunk, base as usize).is_err() {
            break;
        }
        for (i, q) in chunk.chunks_exact(8).enumerate() {
            let off = base + i as u64 * 8;
            let mut b = [0u8; 8];
            b.copy_from_slice(q);
            check.checked += 1;
            if u64::from_le_bytes(b) != pattern(off, seed) {
                check.mismatches += 1;
                check.first_mismatch.get_or_insert(off);
            }
        }
        base += n as u64;
    }
    check
}

/// Reads the qword at `offset` (None outside the mapping).
pub fn read_u64(m: &MmapRegion, offset: u64) -> Option<u64> {
    m.as_volatile_slice()
        .read_obj(usize::try_from(offset).ok()?)
        .ok()
}

/// Writes the qword at `offset`; false outside the mapping.
pub fn write_u64(m: &MmapRegion, offset: u64, value: u64) -> bool {
    let Ok(off) = usize::try_from(offset) else {
        return false;
    };
    m.as_volatile_slice().write_obj(value, off).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_pattern_is_found_and_a_corruption_is_located() {
        let m = MmapRegion::new(3 << 20).unwrap();
        assert_eq!(write_sparse(&m, 1 << 20, 4096, 5), 256);
        assert_eq!(read_u64(&m, 4096), Some(pattern(4096, 5)));
        assert_eq!(read_u64(&m, 8), Some(0));
        for off in (0..3u64 << 20).step_by(8) {
            assert!(write_u64(&m, off, pattern(off, 9)));
        }
        assert!(verify_all(&m, 3 << 20, 9).ok());
        assert!(write_u64(&m, (2 << 20) + 16, 0));
        assert!(write_u64(&m, (2 << 20) + 24, 0));
        let c = verify_all(&m, 3 << 20, 9);
        assert_eq!(
            (c.checked, c.mismatches, c.first_mismatch),
            (3 << 17, 2, Some((2 << 20) + 16))
        );
        assert!(!verify_all(&m, 0, 9).ok(), "nothing compared is not a pass");
        assert!(!write_u64(&m, 3 << 20, 1));
        assert_eq!(read_u64(&m, (3 << 20) - 4), None);
    }
}
