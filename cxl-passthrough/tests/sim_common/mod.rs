//! Helpers shared by the simulator tests: decode the simulator's answers with
//! `uapi::wire` only, the way the kernel selftests do.
#![allow(dead_code, clippy::unwrap_used)]

use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::sim::{BarLayout, Errno, SimConfig, SimDevice};
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::uapi::wire::{
    CapHeader, CxlCapV2, CxlCapV3, DEVICE_CAP_CXL, DeviceInfoHeader, RegionInfoHeader, SparseArea,
    le32, le64,
};

/// BAR layouts A, B, C.
pub const BAR_LAYOUTS: [BarLayout; 3] = [BarLayout::End, BarLayout::Start, BarLayout::Middle];

/// A device of `rev` with `bar_layout`.
pub fn device(rev: UapiRevision, bar_layout: BarLayout) -> SimDevice {
    SimDevice::new(SimConfig {
        bar_layout,
        ..SimConfig::new(rev)
    })
    .expect("sim device")
}

/// Finds capability `id` in a VFIO info chain starting at `cap_offset`.
pub fn find_cap(buf: &[u8], cap_offset: u32, id: u16) -> Option<usize> {
    let mut off = cap_offset as usize;
    for _ in 0..16 {
        if off == 0 {
            return None;
        }
        let h = CapHeader::decode(buf, off)?;
        if h.id == id {
            return Some(off);
        }
        off = h.next as usize;
    }
    None
}

/// The fixture the selftests build: device info, CXL cap and the two region infos.
pub struct Fixture {
    pub info: DeviceInfoHeader,
    pub raw: Vec<u8>,
    pub cap_off: usize,
}

impl Fixture {
    /// GET_INFO with a 512-byte buffer, as the v2 selftest does.
    pub fn new(dev: &SimDevice) -> Self {
        let mut raw = vec![0u8; 512];
        raw[..4].copy_from_slice(&512u32.to_le_bytes());
        dev.ioctl_device_info(&mut raw).expect("GET_INFO");
        let info = DeviceInfoHeader::decode(&raw).unwrap();
        let cap_off = find_cap(&raw, info.cap_offset, DEVICE_CAP_CXL).expect("CAP_CXL");
        Fixture { info, raw, cap_off }
    }

    pub fn v2(&self) -> CxlCapV2 {
        CxlCapV2::decode(&self.raw, self.cap_off).unwrap()
    }

    pub fn v3(&self) -> CxlCapV3 {
        CxlCapV3::decode(&self.raw, self.cap_off).unwrap()
    }
}

/// Region info through the Backend (argsz growth included).
pub fn region(dev: &SimDevice, index: u32) -> (RegionInfoHeader, Vec<u8>) {
    let raw = dev.region_info(index).expect("region info");
    (RegionInfoHeader::decode(&raw).unwrap(), raw)
}

/// Decodes the sparse areas of a region answer.
pub fn sparse_areas(raw: &[u8], cap_offset: u32) -> Option<Vec<SparseArea>> {
    let off = find_cap(raw, cap_offset, 1)?;
    let n = le32(raw, off + 8)? as usize;
    (0..n)
        .map(|i| {
            let a = off + 16 + 16 * i;
            Some(SparseArea {
                offset: le64(raw, a)?,
                size: le64(raw, a + 8)?,
            })
        })
        .collect()
}

/// 4-byte pread at `off` in the region at `base`.
pub fn rd32(dev: &SimDevice, base: u64, off: u64) -> u32 {
    let mut b = [0u8; 4];
    assert_eq!(dev.pread(base + off, &mut b), Ok(4), "pread at {off:#x}");
    u32::from_le_bytes(b)
}

/// 4-byte pwrite at `off` in the region at `base`.
pub fn wr32(dev: &SimDevice, base: u64, off: u64, v: u32) {
    assert_eq!(
        dev.pwrite(base + off, &v.to_le_bytes()),
        Ok(4),
        "pwrite at {off:#x}"
    );
}

/// Config-space read of `N` bytes.
pub fn cfg_read<const N: usize>(dev: &SimDevice, off: u64) -> Result<[u8; N], Errno> {
    let base = dev.region_offset(7).unwrap();
    let mut b = [0u8; N];
    let n = dev.pread(base + off, &mut b)?;
    assert_eq!(n, N);
    Ok(b)
}

/// 16-bit config read.
pub fn cfg16(dev: &SimDevice, off: u64) -> u16 {
    u16::from_le_bytes(cfg_read::<2>(dev, off).unwrap())
}

/// 32-bit config read.
pub fn cfg32(dev: &SimDevice, off: u64) -> u32 {
    u32::from_le_bytes(cfg_read::<4>(dev, off).unwrap())
}

/// Config-space write.
pub fn cfg_write(dev: &SimDevice, off: u64, data: &[u8]) {
    let base = dev.region_offset(7).unwrap();
    assert_eq!(dev.pwrite(base + off, data), Ok(data.len()));
}
