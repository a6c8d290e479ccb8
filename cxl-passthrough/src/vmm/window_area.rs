//! [`window_area`]: where a VMM puts the CFMWS windows of its CXL devices — at the top
//! of its 64-bit device area, never more than half of it, so the PCI apertures keep the
//! rest.

use std::ops::Range;

use crate::plan::CFMWS_ALIGN;

/// Address space reserved per CXL device (windows are packed, so one device may use
/// more than its share).
pub const WINDOW_SPAN: u64 = 256 << 30;

/// The window area for `count` devices at the top of the 64-bit device area
/// `[start, end]` (inclusive), 256 MiB aligned, at most half of the area. `None` without
/// devices or when not even one 256 MiB window fits. The PCI apertures end below the
/// area's start.
pub fn window_area(count: u64, start: u64, end: u64) -> Option<Range<u64>> {
    if count == 0 || end < start {
        return None;
    }
    let top = end.checked_add(1)?;
    let half = (top - start) / 2;
    let len = count.saturating_mul(WINDOW_SPAN).min(half) & !(CFMWS_ALIGN - 1);
    let area_start = (top - len) & !(CFMWS_ALIGN - 1);
    (len > 0 && area_start >= start).then_some(area_start..top)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn the_area_is_at_the_top_aligned_and_at_most_half() {
        // 1 TiB device area from 64 GiB: two devices take 512 GiB at the top.
        let (start, end) = (64 * G, 64 * G + 1024 * G - 1);
        assert_eq!(window_area(2, start, end), Some(end + 1 - 512 * G..end + 1));
        // Ten devices would take 2.5 TiB: capped at half the area.
        assert_eq!(window_area(10, start, end), Some(start + 512 * G..end + 1));
        // An unaligned top: the area starts on a 256 MiB boundary.
        let r = window_area(1, 0, 300 * G + 12345).expect("area");
        assert_eq!(r.start % CFMWS_ALIGN, 0);
        assert_eq!(r.end, 300 * G + 12346);
    }

    #[test]
    fn no_devices_or_no_room_is_no_area() {
        assert_eq!(window_area(0, 0, 1 << 40), None);
        assert_eq!(
            window_area(1, 0, (256 << 20) - 1),
            None,
            "half is below one window"
        );
        assert_eq!(window_area(1, 10, 5), None);
        assert_eq!(window_area(1, 0, u64::MAX), None, "the top overflows");
    }
}
