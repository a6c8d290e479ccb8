//! Planner fuzzing: random BAR layouts and sparse areas (as a hostile kernel could
//! report them) and random window requests. Invariants: no panic; mapped areas are page
//! aligned, inside the BAR, never on a page holding a component-block byte, only inside
//! advertised sparse areas; mapped + overlay + forwarded partition the BAR exactly;
//! windows are 256 MiB aligned and never overlap.
#![no_main]

use cxl_passthrough::plan::{CFMWS_ALIGN, WindowAllocator, plan_bar};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, x) in b.iter_mut().enumerate() {
        *x = data.get(i * 8 + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let bar = u64_at(data, 0) % (1 << 24);
    let block_off = u64_at(data, 1) % (1 << 24);
    let block_size = u64_at(data, 2) % (1 << 18);
    let page = 1u64 << (12 + (u64_at(data, 3) % 5));
    let n = (u64_at(data, 4) % 8) as usize;
    let sparse: Vec<(u64, u64)> = (0..n)
        .map(|i| (u64_at(data, 5 + 2 * i), u64_at(data, 6 + 2 * i)))
        .collect();
    if let Ok(p) = plan_bar(bar, block_off, block_size, &sparse, page) {
        let fence_lo = block_off & !(page - 1);
        let fence_hi = (block_off + block_size).div_ceil(page) * page;
        let mut total = p.overlay.end - p.overlay.start;
        for m in &p.mapped {
            assert!(m.offset % page == 0 && m.size % page == 0 && m.size > 0);
            assert!(m.offset + m.size <= bar);
            assert!(m.offset + m.size <= fence_lo || m.offset >= fence_hi);
            let mut at = m.offset;
            while at < m.offset + m.size {
                assert!(
                    sparse
                        .iter()
                        .any(|&(o, l)| o <= at && at + page <= o.saturating_add(l))
                );
                at += page;
            }
            total += m.size;
        }
        total += p.forwarded.iter().map(|r| r.end - r.start).sum::<u64>();
        assert_eq!(total, bar);
    }

    if let Ok(mut a) = WindowAllocator::new(u64_at(data, 21), u64_at(data, 22)) {
        for i in 0..8 {
            let _ = a.allocate((u64_at(data, 23 + i) % 64) * CFMWS_ALIGN);
        }
        let ws = a.windows();
        for (i, x) in ws.iter().enumerate() {
            assert!(x.base % CFMWS_ALIGN == 0);
            for y in &ws[i + 1..] {
                assert!(!x.overlaps(y));
            }
        }
    }
});
