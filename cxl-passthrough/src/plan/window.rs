//! CFMWS window planning: one 256 MiB-aligned guest-physical window per device.

use thiserror::Error;

/// CFMWS base and size granularity (and HDM decoder granularity).
pub const CFMWS_ALIGN: u64 = 256 << 20;

/// A guest-physical window reserved for one device's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Window {
    /// Guest physical base (256 MiB aligned).
    pub base: u64,
    /// Size (multiple of 256 MiB, at least the device memory size).
    pub size: u64,
}

impl Window {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether two windows share any byte.
    pub fn overlaps(&self, other: &Window) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// Why a window could not be planned.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WindowError {
    /// The device memory size is zero or not a multiple of 256 MiB.
    #[error("device memory size {0:#x} is not a non-zero multiple of 256 MiB")]
    BadSize(u64),
    /// The caller's GPA range is empty, misaligned or overflows.
    #[error("guest address range [{start:#x}, {end:#x}) is unusable for CFMWS windows")]
    BadRange {
        /// Start of the range.
        start: u64,
        /// End of the range.
        end: u64,
    },
    /// No room is left in the range.
    #[error(
        "no room for a {size:#x}-byte window in [{start:#x}, {end:#x}) ({used:#x} bytes already used)"
    )]
    Exhausted {
        /// Requested size.
        size: u64,
        /// Start of the range.
        start: u64,
        /// End of the range.
        end: u64,
        /// Bytes already handed out.
        used: u64,
    },
}

/// Hands out non-overlapping CFMWS windows from a caller-provided GPA range.
///
/// The range must lie outside guest RAM and every PCI aperture; the allocator only
/// guarantees alignment, bounds, and that windows never overlap each other.
#[derive(Clone, Debug)]
pub struct WindowAllocator {
    start: u64,
    end: u64,
    next: u64,
    windows: Vec<Window>,
}

impl WindowAllocator {
    /// Creates an allocator for `[start, start + len)`. The start is rounded up and the
    /// end down to 256 MiB.
    pub fn new(start: u64, len: u64) -> Result<Self, WindowError> {
        let end = start.checked_add(len).ok_or(WindowError::BadRange {
            start,
            end: u64::MAX,
        })?;
        let a_start = start
            .checked_next_multiple_of(CFMWS_ALIGN)
            .ok_or(WindowError::BadRange { start, end })?;
        let a_end = end - end % CFMWS_ALIGN;
        if a_start >= a_end {
            return Err(WindowError::BadRange { start, end });
        }
        Ok(Self {
            start: a_start,
            end: a_end,
            next: a_start,
            windows: Vec::new(),
        })
    }

    /// Reserves a window for a device with `dpa_size` bytes of memory.
    pub fn allocate(&mut self, dpa_size: u64) -> Result<Window, WindowError> {
        if dpa_size == 0 || !dpa_size.is_multiple_of(CFMWS_ALIGN) {
            return Err(WindowError::BadSize(dpa_size));
        }
        let exhausted = WindowError::Exhausted {
            size: dpa_size,
            start: self.start,
            end: self.end,
            used: self.next - self.start,
        };
        let Some(end) = self.next.checked_add(dpa_size) else {
            return Err(exhausted);
        };
        if end > self.end {
            return Err(exhausted);
        }
        let w = Window {
            base: self.next,
            size: dpa_size,
        };
        debug_assert!(self.windows.iter().all(|o| !o.overlaps(&w)));
        self.next = end;
        self.windows.push(w);
        Ok(w)
    }

    /// Windows handed out so far, in allocation order.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G: u64 = CFMWS_ALIGN;

    #[test]
    fn allocates_aligned_adjacent_windows() {
        let mut a = WindowAllocator::new(0x3_0000_0000 + 1, 16 * G).unwrap();
        let w0 = a.allocate(2 * G).unwrap();
        let w1 = a.allocate(G).unwrap();
        assert_eq!(w0.base, 0x3_1000_0000);
        assert_eq!(w1.base, w0.end());
        assert!(!w0.overlaps(&w1));
        assert_eq!(a.windows(), &[w0, w1]);
    }

    #[test]
    fn rejects_bad_sizes_and_ranges() {
        let mut a = WindowAllocator::new(0, 4 * G).unwrap();
        assert_eq!(a.allocate(0), Err(WindowError::BadSize(0)));
        assert_eq!(a.allocate(G + 4096), Err(WindowError::BadSize(G + 4096)));
        assert!(matches!(
            a.allocate(8 * G),
            Err(WindowError::Exhausted { .. })
        ));
        assert!(matches!(
            WindowAllocator::new(1, G),
            Err(WindowError::BadRange { .. })
        ));
        assert!(matches!(
            WindowAllocator::new(u64::MAX - 5, 10),
            Err(WindowError::BadRange { .. })
        ));
        assert!(matches!(
            WindowAllocator::new(u64::MAX - G, G),
            Err(WindowError::BadRange { .. })
        ));
    }

    proptest! {
        #[test]
        fn windows_never_overlap_and_stay_in_range(
            start in any::<u64>(), len in any::<u64>(), sizes in proptest::collection::vec(0u64..64, 0..20)
        ) {
            let Ok(mut a) = WindowAllocator::new(start, len) else { return Ok(()); };
            for s in sizes {
                if let Ok(w) = a.allocate(s * G) {
                    prop_assert!(w.base.is_multiple_of(G));
                    prop_assert!(w.size >= s * G);
                    prop_assert!(w.base >= start && w.end() <= start.saturating_add(len));
                }
            }
            let ws = a.windows();
            for (i, x) in ws.iter().enumerate() {
                for y in &ws[i + 1..] {
                    prop_assert!(!x.overlaps(y));
                }
            }
        }
    }
}
