//! `uapi::RegionFlags` reads the kernel's `VFIO_REGION_INFO_FLAG_*` word bit for bit:
//! each accessor answers the kernel's own constant, unknown bits are kept, and the raw
//! word round-trips.

use cxl_passthrough::uapi::RegionFlags;
use vfio_bindings::bindings::vfio as vb;

#[test]
fn each_accessor_is_the_kernels_bit() {
    let f = RegionFlags::from_bits;
    assert!(f(vb::VFIO_REGION_INFO_FLAG_READ).read());
    assert!(f(vb::VFIO_REGION_INFO_FLAG_WRITE).write());
    assert!(f(vb::VFIO_REGION_INFO_FLAG_MMAP).mmap());
    assert!(f(vb::VFIO_REGION_INFO_FLAG_CAPS).caps());
    let rw = RegionFlags::new().with_read(true).with_write(true);
    assert_eq!(
        rw.into_bits(),
        vb::VFIO_REGION_INFO_FLAG_READ | vb::VFIO_REGION_INFO_FLAG_WRITE
    );
    assert!(!rw.mmap() && !rw.caps());
    assert_eq!(
        rw.with_read(false).into_bits(),
        vb::VFIO_REGION_INFO_FLAG_WRITE
    );
}

#[test]
fn unknown_bits_are_kept() {
    let raw = 0xdead_bee0 | vb::VFIO_REGION_INFO_FLAG_MMAP;
    let f = RegionFlags::from_bits(raw);
    assert_eq!(f.into_bits(), raw);
    assert_eq!(u32::from(f), raw);
    assert_eq!(RegionFlags::from(raw), f);
    assert_eq!(f.unknown(), raw >> 4);
    assert!(f.mmap() && !f.read() && !f.write());
    assert_eq!(f.with_caps(true).with_caps(false), f);
}
