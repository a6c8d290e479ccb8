//! Component-BAR planning: which parts of the BAR the guest reaches directly (mmap of the
//! kernel's sparse areas), which part is the trapped COMP_REGS overlay, and which parts
//! are trapped and forwarded to the BAR region as plain reads/writes.
//!
//! The plan trusts nothing the kernel said: mapped areas are clipped to the BAR, shrunk
//! to whole pages and never intersect the (page-rounded) component block, whatever the
//! sparse-mmap capability claims.

use std::ops::Range;

use thiserror::Error;

/// A directly mapped part of the BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MappedArea {
    /// Offset inside the BAR (page aligned).
    pub offset: u64,
    /// Size (whole pages).
    pub size: u64,
}

impl MappedArea {
    /// The area as a range of BAR offsets.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.size
    }
}

/// The plan for one component BAR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BarPlan {
    /// BAR size.
    pub bar_size: u64,
    /// Directly mapped areas, sorted, page aligned, disjoint from `overlay` and each other.
    pub mapped: Vec<MappedArea>,
    /// The trapped COMP_REGS overlay: exactly the component block.
    pub overlay: Range<u64>,
    /// Everything else in the BAR, trapped and forwarded to the BAR region, sorted.
    pub forwarded: Vec<Range<u64>>,
}

/// What a BAR offset resolves to under a [`BarPlan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarTarget {
    /// Inside a directly mapped area (the guest never exits for it).
    Mapped,
    /// Inside the component block: handled by the overlay at this block offset.
    Overlay(u64),
    /// Trapped and forwarded to the BAR region at this BAR offset.
    Forwarded(u64),
    /// Outside the BAR.
    Outside,
}

impl BarPlan {
    /// Resolves a BAR offset.
    pub fn target(&self, offset: u64) -> BarTarget {
        if offset >= self.bar_size {
            BarTarget::Outside
        } else if self.overlay.contains(&offset) {
            BarTarget::Overlay(offset - self.overlay.start)
        } else if self.mapped.iter().any(|m| m.range().contains(&offset)) {
            BarTarget::Mapped
        } else {
            BarTarget::Forwarded(offset)
        }
    }
}

/// Why a BAR cannot be planned.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BarPlanError {
    /// The page size is not a power of two.
    #[error("page size {0:#x} is not a power of two")]
    BadPageSize(u64),
    /// The component block does not fit inside the BAR.
    #[error("component block [{offset:#x}, +{size:#x}) does not fit a {bar_size:#x}-byte BAR")]
    BlockOutsideBar {
        /// Block offset.
        offset: u64,
        /// Block size.
        size: u64,
        /// BAR size.
        bar_size: u64,
    },
}

/// Plans a component BAR of `bar_size` bytes whose component block is
/// `[block_offset, block_offset + block_size)`, given the kernel's sparse areas
/// (`(offset, size)` pairs; hostile values tolerated) and the host page size.
pub fn plan_bar(
    bar_size: u64,
    block_offset: u64,
    block_size: u64,
    sparse: &[(u64, u64)],
    page_size: u64,
) -> Result<BarPlan, BarPlanError> {
    if !page_size.is_power_of_two() {
        return Err(BarPlanError::BadPageSize(page_size));
    }
    let block_end = block_offset
        .checked_add(block_size)
        .filter(|&e| e <= bar_size && block_size > 0);
    let Some(block_end) = block_end else {
        return Err(BarPlanError::BlockOutsideBar {
            offset: block_offset,
            size: block_size,
            bar_size,
        });
    };
    let page_mask = page_size - 1;
    // Pages that hold any byte of the block are never mapped.
    let fence =
        (block_offset & !page_mask)..block_end.div_ceil(page_size).saturating_mul(page_size);

    let mut mapped: Vec<MappedArea> = Vec::new();
    for &(off, len) in sparse {
        let end = off.saturating_add(len).min(bar_size);
        let start = off.checked_next_multiple_of(page_size).unwrap_or(u64::MAX);
        let end = end & !page_mask;
        // Split around the fence.
        for (s, e) in [(start, end.min(fence.start)), (start.max(fence.end), end)] {
            if s < e {
                mapped.push(MappedArea {
                    offset: s,
                    size: e - s,
                });
            }
        }
    }
    mapped.sort_by_key(|m| m.offset);
    // Merge overlapping or adjacent areas so the plan is disjoint.
    let mut merged: Vec<MappedArea> = Vec::with_capacity(mapped.len());
    for m in mapped {
        match merged.last_mut() {
            Some(last) if m.offset <= last.offset + last.size => {
                let end = (last.offset + last.size).max(m.offset + m.size);
                last.size = end - last.offset;
            }
            _ => merged.push(m),
        }
    }

    let overlay = block_offset..block_end;
    let mut forwarded = Vec::new();
    let mut cursor = 0u64;
    let mut holes: Vec<Range<u64>> = merged.iter().map(MappedArea::range).collect();
    holes.push(overlay.clone());
    holes.sort_by_key(|r| r.start);
    for h in holes {
        if h.start > cursor {
            forwarded.push(cursor..h.start);
        }
        cursor = cursor.max(h.end);
    }
    if cursor < bar_size {
        forwarded.push(cursor..bar_size);
    }
    Ok(BarPlan {
        bar_size,
        mapped: merged,
        overlay,
        forwarded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const K: u64 = 1024;
    const BLK: u64 = 64 * K;

    #[test]
    fn bar_layouts_a_b_c() {
        // A: block at the end.
        let p = plan_bar(256 * K, 192 * K, BLK, &[(0, 192 * K)], 4 * K).unwrap();
        assert_eq!(
            p.mapped,
            vec![MappedArea {
                offset: 0,
                size: 192 * K
            }]
        );
        assert_eq!(p.overlay, 192 * K..256 * K);
        assert!(p.forwarded.is_empty());
        // B: block at the start.
        let p = plan_bar(256 * K, 0, BLK, &[(BLK, 192 * K)], 4 * K).unwrap();
        assert_eq!(
            p.mapped,
            vec![MappedArea {
                offset: BLK,
                size: 192 * K
            }]
        );
        assert_eq!(p.target(0x1220), BarTarget::Overlay(0x1220));
        // C: block in the middle, two areas.
        let p = plan_bar(256 * K, BLK, BLK, &[(0, BLK), (2 * BLK, 2 * BLK)], 4 * K).unwrap();
        assert_eq!(p.mapped.len(), 2);
        assert_eq!(p.target(BLK - 1), BarTarget::Mapped);
        assert_eq!(p.target(BLK), BarTarget::Overlay(0));
        assert_eq!(p.target(2 * BLK), BarTarget::Mapped);
        assert_eq!(p.target(256 * K), BarTarget::Outside);
    }

    #[test]
    fn hostile_sparse_areas_are_clipped() {
        // Kernel claims the whole BAR, unaligned edges, and an area past the end.
        let p = plan_bar(
            256 * K,
            BLK,
            BLK,
            &[(0, u64::MAX), (100, 5000), (300 * K, 8 * K)],
            4 * K,
        )
        .unwrap();
        for m in &p.mapped {
            assert!(m.offset.is_multiple_of(4 * K) && m.size.is_multiple_of(4 * K));
            assert!(m.range().end <= BLK || m.offset >= 2 * BLK);
        }
        // Unaligned area start 100: the partial page is forwarded, not mapped.
        let p = plan_bar(256 * K, 192 * K, BLK, &[(100, 192 * K - 100)], 4 * K).unwrap();
        assert_eq!(
            p.mapped,
            vec![MappedArea {
                offset: 4 * K,
                size: 188 * K
            }]
        );
        assert_eq!(p.forwarded, vec![0..4 * K]);
        assert_eq!(p.target(50), BarTarget::Forwarded(50));
    }

    #[test]
    fn rejects_bad_inputs() {
        assert_eq!(
            plan_bar(256 * K, 0, BLK, &[], 3000),
            Err(BarPlanError::BadPageSize(3000))
        );
        assert!(plan_bar(32 * K, 0, BLK, &[], 4 * K).is_err());
        assert!(plan_bar(256 * K, u64::MAX, BLK, &[], 4 * K).is_err());
        assert!(plan_bar(256 * K, 0, 0, &[], 4 * K).is_err());
    }

    proptest! {
        #[test]
        fn plan_partitions_the_bar(
            bar_pages in 1u64..256, block_off in 0u64..256 * 4096, block_size in 1u64..0x20000,
            areas in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..6),
            small in proptest::collection::vec((0u64..0x10_0000, 0u64..0x10_0000), 0..6),
        ) {
            let bar = bar_pages * 4096;
            let sparse: Vec<_> = areas.into_iter().chain(small).collect();
            let Ok(p) = plan_bar(bar, block_off, block_size, &sparse, 4096) else { return Ok(()); };
            let mut covered = 0u64;
            for m in &p.mapped {
                prop_assert!(m.offset.is_multiple_of(4096) && m.size.is_multiple_of(4096) && m.size > 0);
                prop_assert!(m.range().end <= bar);
                // never on a page that holds a block byte
                prop_assert!(m.range().end <= block_off & !4095 || m.offset >= (block_off + block_size).div_ceil(4096) * 4096);
                // only inside what the kernel advertised
                for page in m.range().step_by(4096) {
                    prop_assert!(sparse.iter().any(|&(o, l)| o <= page && page + 4096 <= o.saturating_add(l)));
                }
                covered += m.size;
            }
            for w in p.mapped.windows(2) {
                prop_assert!(w[0].range().end < w[1].offset);
            }
            covered += p.overlay.end - p.overlay.start;
            covered += p.forwarded.iter().map(|r| r.end - r.start).sum::<u64>();
            prop_assert_eq!(covered, bar);
        }
    }
}
