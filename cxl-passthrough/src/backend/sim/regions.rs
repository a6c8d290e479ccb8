//! `VFIO_DEVICE_GET_INFO` / `VFIO_DEVICE_GET_REGION_INFO` answers, argsz growth,
//! sparse-mmap carving (v2 §6.3 exact, v3 §7.6 page-rounded) and mmap checks.

use super::config::Errno;
use super::faults::{CapChainFault, InfoTarget, Op};
use super::layout::{PAGE, RegionDesc, RegionKind};
use super::{Mapping, Prot, SimDevice};
use crate::regs::component::CM_OFFSET;
use crate::uapi::UapiRevision;
use crate::uapi::wire::{
    CXL_V2_CACHE_CAPABLE, CXL_V2_FIRMWARE_COMMITTED, CXL_V3_HOST_FIRMWARE_COMMITTED, CapHeader,
    CompRegsGeometryCap, CxlCapV2, CxlCapV3, DEVICE_CAP_CXL, DEVICE_CAP_CXL_VERSION,
    DEVICE_FLAGS_CAPS, DEVICE_FLAGS_CXL, DEVICE_FLAGS_PCI, DEVICE_FLAGS_RESET, DEVICE_INFO_SIZE,
    DeviceInfoHeader, REGION_CAP_CXL_COMP_REGS, REGION_CAP_CXL_COMP_REGS_VERSION,
    REGION_CAP_SPARSE_MMAP, REGION_FLAG_CAPS, REGION_FLAG_MMAP, REGION_FLAG_READ,
    REGION_FLAG_WRITE, REGION_INFO_SIZE, REGION_SUBTYPE_CXL_COMP_REGS, REGION_SUBTYPE_CXL_DPA,
    REGION_TYPE_CXL, RegionInfoHeader, SparseArea, encode_sparse_cap, encode_type_cap, le32,
};

/// `VFIO_PCI_NUM_IRQS` (INTx, MSI, MSI-X, ERR, REQ).
const NUM_IRQS: u32 = 5;
/// `offsetofend(struct vfio_device_info, num_irqs)`.
const DEVICE_INFO_MINSZ: u32 = 16;
/// Length the bogus CXL capability is given.
const BOGUS_CXL_CAP_LEN: usize = 40;

/// Links `caps` into a chain starting at absolute offset `base`.
fn link(caps: Vec<Vec<u8>>, base: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let n = caps.len();
    for (i, mut c) in caps.into_iter().enumerate() {
        let next = if i + 1 < n {
            base + out.len() + c.len()
        } else {
            0
        };
        if let Some(f) = c.get_mut(4..8) {
            f.copy_from_slice(&(next as u32).to_le_bytes());
        }
        out.extend_from_slice(&c);
    }
    out
}

/// Corrupts the first capability of a linked chain at absolute offset `base`.
fn corrupt(chain: &mut Vec<u8>, base: usize, kind: CapChainFault) {
    let set_next = |chain: &mut Vec<u8>, v: usize| {
        if let Some(f) = chain.get_mut(4..8) {
            f.copy_from_slice(&(v as u32).to_le_bytes());
        }
    };
    match kind {
        CapChainFault::Loop => set_next(chain, base),
        CapChainFault::NextOutOfBounds => set_next(chain, base + chain.len() + 0x1000),
        CapChainFault::Truncated => {
            if CapHeader::decode(chain, 0).is_some_and(|h| h.id == REGION_CAP_SPARSE_MMAP) {
                let nr = le32(chain, 8).unwrap_or(0).saturating_add(8);
                chain[8..12].copy_from_slice(&nr.to_le_bytes());
            } else {
                chain.truncate(chain.len().saturating_sub(4).min(16));
            }
        }
        CapChainFault::BogusCxlCapSize => {
            set_next(chain, 0);
            chain.resize(BOGUS_CXL_CAP_LEN, 0);
        }
    }
}

/// Writes the header and, when it fits, the chain, as the kernel's info ioctls do.
/// `hdr_size` is the structure size, `minsz` the smallest accepted argsz.
fn answer(buf: &mut [u8], argsz: u32, hdr: &[u8], chain: &[u8]) -> Result<(), Errno> {
    let total = hdr.len() + chain.len();
    if !chain.is_empty() && (argsz as usize) >= total {
        buf.get_mut(hdr.len()..total)
            .ok_or(Errno::EFAULT)?
            .copy_from_slice(chain);
    }
    let n = (argsz as usize).min(hdr.len());
    buf.get_mut(..n)
        .ok_or(Errno::EFAULT)?
        .copy_from_slice(&hdr[..n]);
    Ok(())
}

impl SimDevice {
    /// `VFIO_DEVICE_GET_INFO` on `buf` (argsz read from the buffer).
    pub fn ioctl_device_info(&self, buf: &mut [u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        st.check_open()?;
        if !st.faults.is_empty()
            && let Some(e) = st.faults.errno_for(Op::DeviceInfo)
        {
            return Err(e);
        }
        st.stats.device_info += 1;
        let argsz = le32(buf, 0).ok_or(Errno::EFAULT)?;
        if argsz < DEVICE_INFO_MINSZ {
            return Err(Errno::EINVAL);
        }
        let mut flags = DEVICE_FLAGS_RESET | DEVICE_FLAGS_PCI;
        let mut caps = Vec::new();
        if self.layout.cxl {
            flags |= DEVICE_FLAGS_CXL;
            // v4 has no device capability (and no other one here, so no CAPS flag).
            if self.cfg.revision != UapiRevision::V4 {
                flags |= DEVICE_FLAGS_CAPS;
                if !st.faults.no_cxl_cap() {
                    caps.push(self.cxl_cap());
                }
            }
        }
        let mut chain = link(caps, DEVICE_INFO_SIZE);
        if let Some(kind) = st.faults.cap_chain(InfoTarget::DeviceInfo)
            && !chain.is_empty()
        {
            corrupt(&mut chain, DEVICE_INFO_SIZE, kind);
        }
        let mut h = DeviceInfoHeader {
            argsz,
            flags,
            num_regions: self.layout.regions.len() as u32,
            num_irqs: NUM_IRQS,
            cap_offset: 0,
        };
        if !chain.is_empty() {
            let total = (DEVICE_INFO_SIZE + chain.len()) as u32;
            if argsz < total {
                h.argsz = total;
            } else {
                h.cap_offset = DEVICE_INFO_SIZE as u32;
            }
        }
        answer(buf, argsz, &h.encode(), &chain)
    }

    fn cxl_cap(&self) -> Vec<u8> {
        let hdr = CapHeader {
            id: DEVICE_CAP_CXL,
            version: DEVICE_CAP_CXL_VERSION,
            next: 0,
        };
        let l = &self.layout;
        match self.cfg.revision {
            UapiRevision::V2 => {
                let mut flags = CXL_V2_FIRMWARE_COMMITTED;
                if self.cfg.cache_capable {
                    flags |= CXL_V2_CACHE_CAPABLE;
                }
                CxlCapV2 {
                    hdm_regs_bar_index: l.comp_bar,
                    reserved: [0; 3],
                    flags,
                    hdm_regs_offset: l.comp_off + CM_OFFSET,
                    dpa_region_index: l.dpa_index,
                    comp_regs_region_index: l.comp_index,
                }
                .encode(hdr)
                .to_vec()
            }
            UapiRevision::V3 => CxlCapV3 {
                flags: CXL_V3_HOST_FIRMWARE_COMMITTED,
                hdm_region_idx: l.dpa_index,
                comp_reg_region_idx: l.comp_index,
                comp_reg_bar: u32::from(l.comp_bar),
                comp_reg_offset: l.comp_off,
                comp_reg_size: crate::regs::component::COMPONENT_BLOCK_SIZE,
                ..Default::default()
            }
            .encode(hdr)
            .to_vec(),
            UapiRevision::V4 => Vec::new(),
        }
    }

    /// v4: the COMP_REGS geometry capability (component BAR, BAR offset of the HDM block).
    fn geometry_cap(&self) -> Vec<u8> {
        CompRegsGeometryCap {
            bar: u32::from(self.layout.comp_bar),
            reserved: 0,
            offset: self.layout.excluded().0,
        }
        .encode(CapHeader {
            id: REGION_CAP_CXL_COMP_REGS,
            version: REGION_CAP_CXL_COMP_REGS_VERSION,
            next: 0,
        })
        .to_vec()
    }

    /// Sparse areas of the component BAR (`None`: the BAR is not carved).
    fn sparse_areas(&self, r: &RegionDesc) -> Option<Vec<SparseArea>> {
        let RegionKind::Bar(b) = r.kind else {
            return None;
        };
        if !self.layout.carves(b) {
            return None;
        }
        let (lo, hi) = self.layout.excluded();
        let (lo, hi) = match self.cfg.revision {
            UapiRevision::V2 => (lo, hi),
            UapiRevision::V3 | UapiRevision::V4 => (lo / PAGE * PAGE, hi.div_ceil(PAGE) * PAGE),
        };
        let mut areas = Vec::new();
        if lo > 0 {
            areas.push(SparseArea {
                offset: 0,
                size: lo,
            });
        }
        if hi < r.size {
            areas.push(SparseArea {
                offset: hi,
                size: r.size - hi,
            });
        }
        Some(areas)
    }

    /// Flags and capabilities of region `r` (no fault overrides).
    fn region_flags_caps(&self, r: &RegionDesc) -> (u32, Vec<Vec<u8>>) {
        let rw = REGION_FLAG_READ | REGION_FLAG_WRITE;
        match r.kind {
            RegionKind::Bar(_) if r.size == 0 => (0, vec![]),
            RegionKind::Bar(_) => match self.sparse_areas(r) {
                None => (rw | REGION_FLAG_MMAP, vec![]),
                Some(a) if a.is_empty() => (rw, vec![]),
                Some(a) => (rw | REGION_FLAG_MMAP, vec![encode_sparse_cap(0, &a)]),
            },
            RegionKind::Rom | RegionKind::Vga => (0, vec![]),
            RegionKind::Config => (rw, vec![]),
            RegionKind::Dpa => (
                if self.cfg.dpa_mmap {
                    rw | REGION_FLAG_MMAP
                } else {
                    rw
                },
                vec![encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_DPA).to_vec()],
            ),
            RegionKind::CompRegs => {
                let mut caps = vec![
                    encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_COMP_REGS).to_vec(),
                ];
                if self.cfg.revision == UapiRevision::V4 {
                    caps.push(self.geometry_cap());
                }
                (rw, caps)
            }
        }
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` on `buf` (argsz and index read from the buffer).
    pub fn ioctl_region_info(&self, buf: &mut [u8]) -> Result<(), Errno> {
        let mut st = self.lock();
        st.check_open()?;
        if !st.faults.is_empty()
            && let Some(e) = st.faults.errno_for(Op::RegionInfo)
        {
            return Err(e);
        }
        st.stats.region_info += 1;
        let argsz = le32(buf, 0).ok_or(Errno::EFAULT)?;
        let index = le32(buf, 8).ok_or(Errno::EFAULT)?;
        if argsz < REGION_INFO_SIZE as u32 {
            return Err(Errno::EINVAL);
        }
        let r = self.layout.region(index).ok_or(Errno::EINVAL)?;
        // A device without VGA has no VGA region: vfio-pci answers EINVAL for its index
        // (seen from the real v3 driver, docs/uapi.md §6 finding 15), not an empty region.
        if r.kind == RegionKind::Vga {
            return Err(Errno::EINVAL);
        }
        let (mut flags, caps) = self.region_flags_caps(&r);
        let mut chain = link(caps, REGION_INFO_SIZE);
        if let Some(kind) = st.faults.cap_chain(InfoTarget::Region(index))
            && !chain.is_empty()
        {
            corrupt(&mut chain, REGION_INFO_SIZE, kind);
        }
        let mut h = RegionInfoHeader {
            argsz,
            flags: 0,
            index,
            cap_offset: 0,
            size: st.faults.region_size(index).unwrap_or(r.size),
            offset: r.offset,
        };
        if !chain.is_empty() {
            flags |= REGION_FLAG_CAPS;
            let total = (REGION_INFO_SIZE + chain.len()) as u32;
            if argsz < total {
                h.argsz = total;
            } else {
                h.cap_offset = REGION_INFO_SIZE as u32;
            }
        }
        h.flags = flags;
        answer(buf, argsz, &h.encode(), &chain)
    }

    /// Checks an mmap of `len` bytes at `file_offset` against the kernel's rules.
    fn mmap_check(&self, file_offset: u64, len: u64) -> Result<(), Errno> {
        let (r, pos) = self.layout.route(file_offset).ok_or(Errno::EINVAL)?;
        let (flags, _) = self.region_flags_caps(&r);
        if flags & REGION_FLAG_MMAP == 0 || len == 0 || !pos.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let end = pos.checked_add(len).ok_or(Errno::EOVERFLOW)?;
        if end > r.size {
            return Err(Errno::EINVAL);
        }
        let (ex_lo, ex_hi) = self.layout.excluded();
        if let RegionKind::Bar(b) = r.kind
            && self.layout.carves(b)
            && pos < ex_hi
            && end > ex_lo
        {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// `mmap(MAP_SHARED, device_fd, file_offset)` with the kernel's checks; the mapping
    /// is real (backed by the simulator's memfd).
    pub fn mmap(&self, file_offset: u64, len: usize, prot: Prot) -> Result<Mapping, Errno> {
        let mut st = self.lock();
        st.check_open()?;
        if !st.faults.is_empty()
            && let Some(e) = st.faults.errno_for(Op::Mmap)
        {
            return Err(e);
        }
        self.mmap_check(file_offset, len as u64)?;
        let m = Mapping::map(self.device_fd(), file_offset, len, prot)?;
        st.stats.mmaps += 1;
        Ok(m)
    }

    /// Checks that the region starting at `region_offset` may be mmap'ed at all.
    pub(super) fn mmap_check_source(&self, region_offset: u64) -> Result<(), Errno> {
        let mut st = self.lock();
        st.check_open()?;
        if !st.faults.is_empty()
            && let Some(e) = st.faults.errno_for(Op::Mmap)
        {
            return Err(e);
        }
        let r = self
            .layout
            .regions
            .iter()
            .find(|r| r.offset == region_offset)
            .ok_or(Errno::EINVAL)?;
        let (flags, _) = self.region_flags_caps(r);
        if flags & REGION_FLAG_MMAP == 0 {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}
