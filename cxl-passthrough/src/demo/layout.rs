//! The demo guest's physical address space, and its identity page tables (pure).
//!
//! ```text
//! 0x0000_1000  PML4                 (one page)
//! 0x0000_2000  PDPT                 (one page, 512 GiB reach)
//! 0x0000_3000  page directories     (one page per GiB that needs mapping)
//! 0x0008_0000  results              (RESULTS_SIZE bytes, written by the guest)
//! 0x0010_0000  guest program        (up to CODE_MAX bytes)
//! 0x0020_0000  timing samples       (SAMPLES_SIZE bytes, written by the guest)
//! 0x0100_0000  RAM bandwidth buffers (2 x ram_buffer bytes)
//! 0xE000_0000  component BARs       (BAR_STRIDE apart, below the no-op device)
//! 0xFEB0_0000  no-op MMIO device    (one page, the trapped-access baseline)
//! 0xFED0_0000  host-bridge CHBCRs   (64 KiB each)
//! 0x1_0000_0000 and up: CFMWS windows (256 MiB aligned, from the window allocator)
//! ```
//!
//! Everything below 4 GiB except RAM is an MMIO hole, the way PC firmware lays it out;
//! the windows sit above 4 GiB like a real CFMWS, so the guest runs in long mode with
//! 2 MiB identity pages.

use std::ops::Range;

/// PML4 page.
pub const PML4_GPA: u64 = 0x1000;
/// PDPT page.
pub const PDPT_GPA: u64 = 0x2000;
/// First page directory.
pub const PD_GPA: u64 = 0x3000;
/// Most page directories (GiB of address space that can be mapped).
pub const PD_MAX: u64 = (RESULTS_GPA - PD_GPA) / PAGE_4K;
/// Results area.
pub const RESULTS_GPA: u64 = 0x8_0000;
/// Results area size.
pub const RESULTS_SIZE: u64 = 0x1_0000;
/// Guest program.
pub const CODE_GPA: u64 = 0x10_0000;
/// Largest guest program.
pub const CODE_MAX: u64 = 0x10_0000;
/// Per-round timing samples.
pub const SAMPLES_GPA: u64 = 0x20_0000;
/// Samples area size.
pub const SAMPLES_SIZE: u64 = 0xE0_0000;
/// RAM buffer the guest measures bandwidth on.
pub const RAM_BUFFER_GPA: u64 = 0x100_0000;
/// First component BAR.
pub const BAR_GPA: u64 = 0xE000_0000;
/// Distance between component BARs (largest BAR the demo places).
pub const BAR_STRIDE: u64 = 0x200_0000;
/// First emulated host-bridge component register block (CHBCR), 64 KiB each.
pub const CHBCR_GPA: u64 = 0xFED0_0000;
/// No-op MMIO device (baseline for the trapped-access cost).
pub const NOOP_GPA: u64 = 0xFEB0_0000;
/// No-op device size.
pub const NOOP_SIZE: u64 = 0x1000;
/// Where CFMWS windows start.
pub const WINDOWS_GPA: u64 = 1 << 32;
/// Room for CFMWS windows.
pub const WINDOWS_LEN: u64 = 64 << 30;

const PAGE_4K: u64 = 0x1000;
const PAGE_2M: u64 = 2 << 20;
const GIB: u64 = 1 << 30;
const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;

/// Guest RAM size for two RAM buffers of `ram_buffer` bytes each (the second one
/// calibrates the bandwidth measurement: RAM against RAM).
pub const fn ram_size(ram_buffer: u64) -> u64 {
    RAM_BUFFER_GPA + 2 * ram_buffer
}

/// GPA of the `n`th component BAR.
pub const fn bar_gpa(n: u64) -> u64 {
    BAR_GPA + n * BAR_STRIDE
}

/// Why the page tables cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A range reaches past 512 GiB (one PDPT).
    #[error("guest range {0:#x}..{1:#x} is beyond the 512 GiB the demo page tables reach")]
    TooHigh(u64, u64),
    /// Too many distinct GiB need a page directory.
    #[error("more than {PD_MAX} GiB of guest address space to map")]
    TooManyDirectories,
}

/// Identity page tables as `(gpa, page bytes)` pairs: PML4, PDPT and one page directory
/// per GiB touched by `ranges`, every 2 MiB page of which is mapped writable.
pub fn identity_tables(ranges: &[Range<u64>]) -> Result<Vec<(u64, Vec<u8>)>, LayoutError> {
    let mut gibs: Vec<u64> = Vec::new();
    for r in ranges.iter().filter(|r| r.start < r.end) {
        if r.end > 512 * GIB {
            return Err(LayoutError::TooHigh(r.start, r.end));
        }
        for g in r.start / GIB..r.end.div_ceil(GIB) {
            if !gibs.contains(&g) {
                gibs.push(g);
            }
        }
    }
    gibs.sort_unstable();
    if gibs.len() as u64 > PD_MAX {
        return Err(LayoutError::TooManyDirectories);
    }
    let mut pml4 = vec![0u8; PAGE_4K as usize];
    put(&mut pml4, 0, PDPT_GPA | PRESENT | WRITABLE | USER);
    let mut pdpt = vec![0u8; PAGE_4K as usize];
    let mut pages = Vec::with_capacity(gibs.len() + 2);
    for (i, g) in gibs.iter().enumerate() {
        let pd_gpa = PD_GPA + i as u64 * PAGE_4K;
        put(&mut pdpt, *g as usize, pd_gpa | PRESENT | WRITABLE | USER);
        let mut pd = vec![0u8; PAGE_4K as usize];
        for e in 0..512u64 {
            put(
                &mut pd,
                e as usize,
                (g * GIB + e * PAGE_2M) | PRESENT | WRITABLE | USER | HUGE,
            );
        }
        pages.push((pd_gpa, pd));
    }
    pages.insert(0, (PDPT_GPA, pdpt));
    pages.insert(0, (PML4_GPA, pml4));
    Ok(pages)
}

fn put(page: &mut [u8], entry: usize, value: u64) {
    if let Some(slot) = page.get_mut(entry * 8..entry * 8 + 8) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(page: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(page[i * 8..i * 8 + 8].try_into().unwrap())
    }

    /// Walks the tables like the MMU does for a 2 MiB page.
    fn translate(pages: &[(u64, Vec<u8>)], va: u64) -> Option<u64> {
        let page = |gpa: u64| pages.iter().find(|(g, _)| *g == gpa).map(|(_, p)| p);
        let pml4e = entry(page(PML4_GPA)?, ((va >> 39) & 511) as usize);
        let pdpte = entry(page(pml4e & !0xFFF)?, ((va >> 30) & 511) as usize);
        if pdpte & PRESENT == 0 {
            return None;
        }
        let pde = entry(page(pdpte & !0xFFF)?, ((va >> 21) & 511) as usize);
        (pde & PRESENT != 0 && pde & HUGE != 0).then_some((pde & !0x1F_FFFF) | (va & 0x1F_FFFF))
    }

    #[test]
    fn maps_ram_holes_and_windows_identically() {
        let pages = identity_tables(&[
            0..ram_size(32 << 20),
            BAR_GPA..NOOP_GPA + NOOP_SIZE,
            WINDOWS_GPA..WINDOWS_GPA + (512 << 20),
            (7 << 30) + 5..(7 << 30) + 6,
        ])
        .unwrap();
        // PML4, PDPT, GiB 0, 3, 4, 7.
        assert_eq!(pages.len(), 6);
        for va in [
            0x1234,
            CODE_GPA,
            RAM_BUFFER_GPA + 0x12_3458,
            NOOP_GPA + 8,
            WINDOWS_GPA,
            WINDOWS_GPA + (300 << 20) + 0x40,
            (7 << 30) + 0x1F_FFF8,
        ] {
            assert_eq!(translate(&pages, va), Some(va), "{va:#x}");
        }
        assert_eq!(translate(&pages, 5 << 30), None);
        for (gpa, _) in &pages {
            assert!(*gpa < RESULTS_GPA);
        }
    }

    #[test]
    fn refuses_what_it_cannot_map() {
        assert!(matches!(
            identity_tables(&[0..1, 0..(513 << 30)]),
            Err(LayoutError::TooHigh(..))
        ));
        assert_eq!(
            identity_tables(&[0..1, 0..(PD_MAX + 1) * GIB]),
            Err(LayoutError::TooManyDirectories)
        );
    }
}
