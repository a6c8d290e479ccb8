//! Builders for kernel answers used by the `uapi_*` integration tests. They only use
//! the wire encoders, so the bytes are what a kernel following the layouts would send.
#![allow(dead_code)]

use cxl_passthrough::uapi::wire::*;

/// BAR holding the component block in the fixtures.
pub const BAR: u8 = 2;
/// BAR size (BAR layout C: block in the middle).
pub const BAR_SIZE: u64 = 0x4_0000;
/// Component block offset in the BAR.
pub const COMP_OFF: u64 = 0x1_0000;
/// DPA region index.
pub const DPA_IDX: u32 = 9;
/// COMP_REGS region index.
pub const COMP_IDX: u32 = 10;
/// Region count.
pub const NUM_REGIONS: u32 = 11;
/// DPA size.
pub const DPA_SIZE: u64 = 1 << 30;
/// Device flags of a CXL device.
pub const CXL_FLAGS: u32 =
    DEVICE_FLAGS_RESET | DEVICE_FLAGS_PCI | DEVICE_FLAGS_CAPS | DEVICE_FLAGS_CXL;

/// A capability header with `next` 0 (the chain builder links them).
pub fn hdr(id: u16) -> CapHeader {
    CapHeader {
        id,
        version: 1,
        next: 0,
    }
}

/// A valid v2 capability.
pub fn v2() -> CxlCapV2 {
    CxlCapV2 {
        hdm_regs_bar_index: BAR,
        reserved: [0; 3],
        flags: CXL_V2_FIRMWARE_COMMITTED | CXL_V2_CACHE_CAPABLE,
        hdm_regs_offset: COMP_OFF + 0x1000,
        dpa_region_index: DPA_IDX,
        comp_regs_region_index: COMP_IDX,
    }
}

/// A valid v3 capability.
pub fn v3() -> CxlCapV3 {
    CxlCapV3 {
        flags: CXL_V3_HOST_FIRMWARE_COMMITTED,
        hdm_region_idx: DPA_IDX,
        comp_reg_region_idx: COMP_IDX,
        comp_reg_bar: u32::from(BAR),
        resv: 0,
        pad: 0,
        comp_reg_offset: COMP_OFF,
        comp_reg_size: 0x1_0000,
    }
}

/// v2 capability bytes.
pub fn v2_bytes(c: CxlCapV2) -> Vec<u8> {
    c.encode(hdr(DEVICE_CAP_CXL)).to_vec()
}

/// v3 capability bytes.
pub fn v3_bytes(c: CxlCapV3) -> Vec<u8> {
    c.encode(hdr(DEVICE_CAP_CXL)).to_vec()
}

/// Another (unknown to the parser) capability of `len` bytes (>= 8, multiple of 8).
pub fn other_cap(id: u16, len: usize) -> Vec<u8> {
    let mut b = hdr(id).encode().to_vec();
    b.resize(len, 0x5A);
    b
}

/// Appends `caps` after `fixed` bytes, each 8-byte aligned, linking `next` fields.
/// Returns the buffer and the offset of the first capability (0 if none).
pub fn link(mut buf: Vec<u8>, caps: &[Vec<u8>]) -> (Vec<u8>, u32) {
    let mut offs = Vec::new();
    for c in caps {
        while !buf.len().is_multiple_of(8) {
            buf.push(0);
        }
        offs.push(buf.len());
        buf.extend_from_slice(c);
    }
    for (i, &o) in offs.iter().enumerate() {
        let next = offs.get(i + 1).copied().unwrap_or(0) as u32;
        buf[o + 4..o + 8].copy_from_slice(&next.to_le_bytes());
    }
    (buf, offs.first().copied().unwrap_or(0) as u32)
}

/// A device info answer with `caps` (already encoded), `flags` and `pad` trailing zeros.
pub fn device_answer(flags: u32, num_regions: u32, caps: &[Vec<u8>], pad: usize) -> Vec<u8> {
    let (mut b, first) = link(vec![0; DEVICE_INFO_SIZE], caps);
    b.resize(b.len() + pad, 0);
    let h = DeviceInfoHeader {
        argsz: b.len() as u32,
        flags,
        num_regions,
        num_irqs: 5,
        cap_offset: first,
    };
    b[..DEVICE_INFO_SIZE].copy_from_slice(&h.encode());
    b
}

/// The standard CXL device answer with the given CXL capability bytes.
pub fn cxl_device(cap: Vec<u8>) -> Vec<u8> {
    device_answer(CXL_FLAGS, NUM_REGIONS, &[cap], 0)
}

/// A region info answer.
pub fn region_answer(index: u32, flags: u32, size: u64, caps: &[Vec<u8>]) -> Vec<u8> {
    let (mut b, first) = link(vec![0; REGION_INFO_SIZE], caps);
    let flags = if caps.is_empty() {
        flags
    } else {
        flags | REGION_FLAG_CAPS
    };
    let h = RegionInfoHeader {
        argsz: b.len() as u32,
        flags,
        index,
        cap_offset: first,
        size,
        offset: u64::from(index) << PCI_OFFSET_SHIFT,
    };
    b[..REGION_INFO_SIZE].copy_from_slice(&h.encode());
    b
}

/// Read|write flags.
pub const RW: u32 = REGION_FLAG_READ | REGION_FLAG_WRITE;

/// The component BAR answer with sparse `areas` (none: no cap, no MMAP).
pub fn bar_answer(areas: &[SparseArea]) -> Vec<u8> {
    if areas.is_empty() {
        region_answer(u32::from(BAR), RW, BAR_SIZE, &[])
    } else {
        region_answer(
            u32::from(BAR),
            RW | REGION_FLAG_MMAP,
            BAR_SIZE,
            &[encode_sparse_cap(0, areas)],
        )
    }
}

/// BAR layout C areas around the fixture block.
pub fn topo_c() -> Vec<SparseArea> {
    vec![
        SparseArea {
            offset: 0,
            size: COMP_OFF,
        },
        SparseArea {
            offset: COMP_OFF + 0x1_0000,
            size: BAR_SIZE - COMP_OFF - 0x1_0000,
        },
    ]
}

/// DPA region answer.
pub fn dpa_answer(size: u64) -> Vec<u8> {
    region_answer(
        DPA_IDX,
        RW | REGION_FLAG_MMAP,
        size,
        &[encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_DPA).to_vec()],
    )
}

/// COMP_REGS region answer.
pub fn comp_answer(size: u64) -> Vec<u8> {
    region_answer(
        COMP_IDX,
        RW,
        size,
        &[encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_COMP_REGS).to_vec()],
    )
}

/// Overwrites a little-endian u32 at `off`.
pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// BAR offset of the HDM block in the v4 fixtures (component block + 0x1000 + 0x200).
pub const V4_HDM_OFF: u64 = COMP_OFF + 0x1200;
/// v4 COMP_REGS size: an HDM block with one decoder.
pub const V4_COMP_SIZE: u64 = 0x30;

/// The v4 device answer: CXL and PCI flags, no capability.
pub fn v4_device() -> Vec<u8> {
    device_answer(
        DEVICE_FLAGS_RESET | DEVICE_FLAGS_PCI | DEVICE_FLAGS_CXL,
        NUM_REGIONS,
        &[],
        0,
    )
}

/// A v4 geometry capability naming `bar` and HDM block offset `offset`.
pub fn geometry(bar: u32, offset: u64) -> Vec<u8> {
    CompRegsGeometryCap {
        bar,
        reserved: 0,
        offset,
    }
    .encode(CapHeader {
        id: REGION_CAP_CXL_COMP_REGS,
        version: REGION_CAP_CXL_COMP_REGS_VERSION,
        next: 0,
    })
    .to_vec()
}

/// The v4 COMP_REGS answer at `index` (type cap + geometry cap).
pub fn v4_comp_answer(index: u32, size: u64, geo: Vec<u8>) -> Vec<u8> {
    region_answer(
        index,
        RW,
        size,
        &[
            encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_COMP_REGS).to_vec(),
            geo,
        ],
    )
}

/// v4 BAR areas: everything but the page holding the HDM block.
pub fn v4_areas() -> Vec<SparseArea> {
    let hole = V4_HDM_OFF & !0xFFF;
    vec![
        SparseArea {
            offset: 0,
            size: hole,
        },
        SparseArea {
            offset: hole + 0x1000,
            size: BAR_SIZE - hole - 0x1000,
        },
    ]
}
