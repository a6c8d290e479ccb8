//! Byte encodings of the ioctl argument structures the kernel backend sends, and
//! decoders of the fields the kernel writes back. Pure code.
//!
//! Layouts follow `vfio-bindings` 0.6.2 (`vfio_group_status`, `vfio_iommu_type1_dma_map`,
//! `vfio_iommu_type1_dma_unmap`, `vfio_device_bind_iommufd`,
//! `vfio_device_attach_iommufd_pt`) and `include/uapi/linux/iommufd.h` for iommufd; the
//! tests check sizes and field offsets against the bindings. Native byte order, as the
//! kernel reads them.

use vfio_bindings::bindings::vfio as vb;

use crate::sys::vfio::{
    IOMMU_DESTROY_SIZE, IOMMU_IOAS_ALLOC_SIZE, IOMMU_IOAS_MAP_FILE_SIZE, IOMMU_IOAS_MAP_FIXED_IOVA,
    IOMMU_IOAS_MAP_READABLE, IOMMU_IOAS_MAP_SIZE, IOMMU_IOAS_MAP_WRITEABLE, IOMMU_IOAS_UNMAP_SIZE,
};

/// Size of `struct vfio_group_status`.
pub const GROUP_STATUS_SIZE: usize = size_of::<vb::vfio_group_status>();
/// Size of `struct vfio_iommu_type1_dma_map`.
pub const DMA_MAP_SIZE: usize = size_of::<vb::vfio_iommu_type1_dma_map>();
/// Size of `struct vfio_iommu_type1_dma_unmap` (without the bitmap).
pub const DMA_UNMAP_SIZE: usize = size_of::<vb::vfio_iommu_type1_dma_unmap>();
/// Size of `struct vfio_device_bind_iommufd`.
pub const BIND_IOMMUFD_SIZE: usize = size_of::<vb::vfio_device_bind_iommufd>();
/// Size of `struct vfio_device_attach_iommufd_pt`.
pub const ATTACH_PT_SIZE: usize = size_of::<vb::vfio_device_attach_iommufd_pt>();

/// Builds a zeroed structure of `size` bytes with its leading size field filled in.
fn sized(size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    put32(&mut b, 0, size as u32);
    b
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    if let Some(d) = b.get_mut(off..off + 8) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

/// Reads a native-endian u32 the kernel wrote, `None` if out of bounds.
pub fn get32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Reads a native-endian u64 the kernel wrote, `None` if out of bounds.
pub fn get64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// `vfio_group_status` with `argsz` set; the kernel fills `flags` (@4).
pub fn group_status() -> Vec<u8> {
    sized(GROUP_STATUS_SIZE)
}

/// Offset of `flags` in `vfio_group_status`.
pub const GROUP_STATUS_FLAGS: usize = 4;

/// The `int` argument of `VFIO_GROUP_SET_CONTAINER`.
pub fn container_fd(fd: i32) -> Vec<u8> {
    fd.to_ne_bytes().to_vec()
}

/// The NUL-terminated device name of `VFIO_GROUP_GET_DEVICE_FD`.
pub fn device_name(bdf: &str) -> Vec<u8> {
    let mut b = bdf.as_bytes().to_vec();
    b.push(0);
    b
}

/// `vfio_iommu_type1_dma_map`: read+write mapping of `size` bytes at `vaddr` to `iova`.
pub fn dma_map(iova: u64, vaddr: u64, size: u64) -> Vec<u8> {
    let mut b = sized(DMA_MAP_SIZE);
    put32(
        &mut b,
        4,
        vb::VFIO_DMA_MAP_FLAG_READ | vb::VFIO_DMA_MAP_FLAG_WRITE,
    );
    put64(&mut b, 8, vaddr);
    put64(&mut b, 16, iova);
    put64(&mut b, 24, size);
    b
}

/// `vfio_iommu_type1_dma_unmap` for `[iova, iova + size)`; no flags.
pub fn dma_unmap(iova: u64, size: u64) -> Vec<u8> {
    let mut b = sized(DMA_UNMAP_SIZE);
    put64(&mut b, 8, iova);
    put64(&mut b, 16, size);
    b
}

/// Offset of `size` in `vfio_iommu_type1_dma_unmap` (the kernel writes back the bytes
/// actually unmapped).
pub const DMA_UNMAP_SIZE_FIELD: usize = 16;

/// `vfio_device_bind_iommufd` binding to `iommufd`; the kernel fills `out_devid` (@12).
pub fn bind_iommufd(iommufd: i32) -> Vec<u8> {
    let mut b = sized(BIND_IOMMUFD_SIZE);
    put32(&mut b, 8, u32::from_ne_bytes(iommufd.to_ne_bytes()));
    b
}

/// Offset of `out_devid` in `vfio_device_bind_iommufd`.
pub const BIND_OUT_DEVID: usize = 12;

/// `vfio_device_attach_iommufd_pt` attaching to page table (IOAS) `pt_id`.
pub fn attach_pt(pt_id: u32) -> Vec<u8> {
    let mut b = sized(ATTACH_PT_SIZE);
    put32(&mut b, 8, pt_id);
    b
}

/// `iommu_ioas_alloc`; the kernel fills `out_ioas_id` (@8).
pub fn ioas_alloc() -> Vec<u8> {
    sized(IOMMU_IOAS_ALLOC_SIZE)
}

/// Offset of `out_ioas_id` in `iommu_ioas_alloc`.
pub const IOAS_ALLOC_OUT_ID: usize = 8;

/// `iommu_ioas_map`: fixed-IOVA read+write mapping of `length` bytes at `user_va`.
pub fn ioas_map(ioas_id: u32, iova: u64, user_va: u64, length: u64) -> Vec<u8> {
    let mut b = sized(IOMMU_IOAS_MAP_SIZE);
    put32(
        &mut b,
        4,
        IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
    );
    put32(&mut b, 8, ioas_id);
    put64(&mut b, 16, user_va);
    put64(&mut b, 24, length);
    put64(&mut b, 32, iova);
    b
}

/// `vfio_device_feature` with `GET | DMA_BUF` and a `vfio_device_feature_dma_buf`
/// payload for one range `[offset, offset + length)` of region `region_index`; the new
/// fd gets `open_flags` (`O_RDWR | O_CLOEXEC`).
pub fn dma_buf_request(region_index: u32, offset: u64, length: u64) -> Vec<u8> {
    use crate::uapi::wire::{
        DEVICE_FEATURE_DMA_BUF, DEVICE_FEATURE_GET, DEVICE_FEATURE_SIZE, DMA_BUF_FEATURE_SIZE,
        DMA_RANGE_SIZE,
    };
    let mut b = sized(DEVICE_FEATURE_SIZE + DMA_BUF_FEATURE_SIZE + DMA_RANGE_SIZE);
    put32(&mut b, 4, DEVICE_FEATURE_GET | DEVICE_FEATURE_DMA_BUF);
    put32(&mut b, 8, region_index);
    put32(&mut b, 12, (libc::O_RDWR | libc::O_CLOEXEC) as u32);
    // flags @16 stay 0; one range.
    put32(&mut b, 20, 1);
    put64(&mut b, 24, offset);
    put64(&mut b, 32, length);
    b
}

/// `iommu_ioas_map_file` of `length` bytes of the file `fd` from `start`, at `iova`
/// (fixed, read and write).
pub fn ioas_map_file(ioas_id: u32, fd: i32, start: u64, iova: u64, length: u64) -> Vec<u8> {
    let mut b = sized(IOMMU_IOAS_MAP_FILE_SIZE);
    put32(
        &mut b,
        4,
        IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
    );
    put32(&mut b, 8, ioas_id);
    put32(&mut b, 12, fd as u32);
    put64(&mut b, 16, start);
    put64(&mut b, 24, length);
    put64(&mut b, 32, iova);
    b
}

/// `iommu_ioas_unmap` of `[iova, iova + length)`.
pub fn ioas_unmap(ioas_id: u32, iova: u64, length: u64) -> Vec<u8> {
    let mut b = sized(IOMMU_IOAS_UNMAP_SIZE);
    put32(&mut b, 4, ioas_id);
    put64(&mut b, 8, iova);
    put64(&mut b, 16, length);
    b
}

/// Offset of `length` in `iommu_ioas_unmap` (the kernel writes back the bytes unmapped).
pub const IOAS_UNMAP_LENGTH: usize = 16;

/// `iommu_destroy` of object `id`.
pub fn iommu_destroy(id: u32) -> Vec<u8> {
    let mut b = sized(IOMMU_DESTROY_SIZE);
    put32(&mut b, 4, id);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn encodings_follow_the_bindings_layout() {
        let b = dma_map(0x1000, 0x7f00_0000_0000, 0x20_0000);
        assert_eq!(b.len(), 32);
        assert_eq!(get32(&b, 0), Some(32));
        assert_eq!(get32(&b, 4), Some(3));
        assert_eq!(
            get64(&b, offset_of!(vb::vfio_iommu_type1_dma_map, vaddr)),
            Some(0x7f00_0000_0000)
        );
        assert_eq!(
            get64(&b, offset_of!(vb::vfio_iommu_type1_dma_map, iova)),
            Some(0x1000)
        );
        assert_eq!(
            get64(&b, offset_of!(vb::vfio_iommu_type1_dma_map, size)),
            Some(0x20_0000)
        );
        let b = dma_unmap(0x1000, 0x2000);
        assert_eq!(
            DMA_UNMAP_SIZE_FIELD,
            offset_of!(vb::vfio_iommu_type1_dma_unmap, size)
        );
        assert_eq!(get64(&b, DMA_UNMAP_SIZE_FIELD), Some(0x2000));
        assert_eq!(
            get64(&b, offset_of!(vb::vfio_iommu_type1_dma_unmap, iova)),
            Some(0x1000)
        );
        let b = bind_iommufd(7);
        assert_eq!(b.len(), 16);
        assert_eq!(
            get32(&b, offset_of!(vb::vfio_device_bind_iommufd, iommufd)),
            Some(7)
        );
        assert_eq!(
            BIND_OUT_DEVID,
            offset_of!(vb::vfio_device_bind_iommufd, out_devid)
        );
        let b = attach_pt(5);
        assert_eq!(
            get32(&b, offset_of!(vb::vfio_device_attach_iommufd_pt, pt_id)),
            Some(5)
        );
        assert_eq!(GROUP_STATUS_FLAGS, offset_of!(vb::vfio_group_status, flags));
        // iommu_ioas_map: size, flags, ioas_id, __reserved, user_va, length, iova.
        let b = ioas_map(2, 0x4000, 0x7f00_0000_0000, 0x1000);
        assert_eq!(b.len(), 40);
        assert_eq!(get32(&b, 4), Some(7));
        assert_eq!(get32(&b, 8), Some(2));
        assert_eq!(get32(&b, 12), Some(0));
        assert_eq!(get64(&b, 16), Some(0x7f00_0000_0000));
        assert_eq!(get64(&b, 24), Some(0x1000));
        assert_eq!(get64(&b, 32), Some(0x4000));
        let b = ioas_unmap(2, 0x4000, 0x1000);
        assert_eq!((get32(&b, 0), get32(&b, 4)), (Some(24), Some(2)));
        assert_eq!(get64(&b, 8), Some(0x4000));
        assert_eq!(get64(&b, IOAS_UNMAP_LENGTH), Some(0x1000));
        assert_eq!(device_name("0000:01:00.0").last(), Some(&0));
        assert_eq!(get32(&iommu_destroy(9), 4), Some(9));
        assert_eq!(get32(&b, usize::MAX - 1), None);
    }
}
