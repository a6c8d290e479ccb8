//! pread / pwrite routing by file offset, per region kind and revision.

use super::config::Errno;
use super::faults::Op;
use super::layout::{RegionDesc, RegionKind};
use super::{CxlState, SimDevice, State, comp_regs_v4};
use crate::uapi::UapiRevision;

/// Direction of an access, carrying its buffer.
pub(super) enum Access<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Access<'_> {
    fn len(&self) -> usize {
        match self {
            Access::Read(b) => b.len(),
            Access::Write(b) => b.len(),
        }
    }
}

impl SimDevice {
    /// `pread(device_fd, buf, file_offset)`: returns bytes read.
    pub fn pread(&self, file_offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut st = self.lock();
        let mut short = false;
        if !st.faults.is_empty() {
            st.check_open()?;
            if let Some(e) = st.faults.errno_for(Op::Read) {
                return Err(e);
            }
            short = st.faults.take_short_read();
        }
        st.check_open()?;
        st.stats.reads += 1;
        let n = self.route(&mut st, file_offset, Access::Read(&mut *buf))?;
        if short {
            // The access happened; only half of it is reported (and delivered).
            let half = n / 2;
            if let Some(tail) = buf.get_mut(half..n) {
                tail.fill(0);
            }
            return Ok(half);
        }
        Ok(n)
    }

    /// `pwrite(device_fd, buf, file_offset)`: returns bytes written.
    pub fn pwrite(&self, file_offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut st = self.lock();
        let mut short = false;
        if !st.faults.is_empty() {
            st.check_open()?;
            if let Some(e) = st.faults.errno_for(Op::Write) {
                return Err(e);
            }
            short = st.faults.take_short_write();
        }
        st.check_open()?;
        st.stats.writes += 1;
        let n = self.route(&mut st, file_offset, Access::Write(buf))?;
        // A short write is reported after the whole access took effect.
        Ok(if short { n / 2 } else { n })
    }

    fn route(&self, st: &mut State, file_offset: u64, acc: Access<'_>) -> Result<usize, Errno> {
        let (region, pos) = self.layout.route(file_offset).ok_or(Errno::EINVAL)?;
        match region.kind {
            RegionKind::Config => {
                match acc {
                    Access::Read(_) => st.stats.config_reads += 1,
                    Access::Write(_) => st.stats.config_writes += 1,
                }
                self.config_rw(st, pos, acc)
            }
            RegionKind::Bar(_) if region.size > 0 => {
                st.stats.bar_accesses += 1;
                self.bar_rw(st, region, pos, acc)
            }
            RegionKind::Dpa => {
                match acc {
                    Access::Read(_) => st.stats.dpa_reads += 1,
                    Access::Write(_) => st.stats.dpa_writes += 1,
                }
                self.dpa_rw(st, pos, acc)
            }
            RegionKind::CompRegs => match (&mut st.cxl, acc) {
                (Some(CxlState::V2 { comp, .. }), Access::Read(b)) => {
                    st.stats.comp_regs_reads += 1;
                    comp.read(pos, b)
                }
                (Some(CxlState::V2 { comp, .. }), Access::Write(b)) => {
                    st.stats.comp_regs_writes += 1;
                    comp.write(pos, b)
                }
                (Some(CxlState::V3 { comp, .. }), Access::Read(b)) => {
                    st.stats.comp_regs_reads += 1;
                    comp.read(pos, b)
                }
                (Some(CxlState::V3 { comp, .. }), Access::Write(b)) => {
                    st.stats.comp_regs_writes += 1;
                    comp.write(pos, b)
                }
                (Some(CxlState::V4 { .. }), Access::Read(b)) => {
                    st.stats.comp_regs_reads += 1;
                    comp_regs_v4::read(&st.hw_comp.hdm, pos, b)
                }
                (Some(CxlState::V4 { .. }), Access::Write(b)) => {
                    st.stats.comp_regs_writes += 1;
                    comp_regs_v4::write(&st.hw_comp.hdm, pos, b)
                }
                (None, _) => Err(Errno::EINVAL),
            },
            RegionKind::Bar(_) | RegionKind::Rom | RegionKind::Vga => Err(Errno::EINVAL),
        }
    }

    fn dpa_rw(&self, st: &mut State, pos: u64, acc: Access<'_>) -> Result<usize, Errno> {
        let size = self.layout.dpa_size;
        let count = acc.len() as u64;
        let n = match self.cfg.revision {
            UapiRevision::V2 => {
                if count == 0 || pos >= size {
                    return Ok(0);
                }
                if !st.dpa.active {
                    return Err(Errno::EIO);
                }
                count.min(size - pos)
            }
            UapiRevision::V3 => {
                if pos > size || count > size - pos {
                    return Err(Errno::EINVAL);
                }
                count
            }
            UapiRevision::V4 => {
                if pos >= size {
                    return Err(Errno::EINVAL);
                }
                if !Self::v4_dpa_allowed(st) {
                    return Err(Errno::EIO);
                }
                count.min(size - pos)
            }
        } as usize;
        let base = self.layout.dpa_file_off + pos;
        if matches!(acc, Access::Write(_)) {
            st.mem_track.written();
        }
        match acc {
            Access::Read(b) => self.mem.read_full(&mut b[..n], base)?,
            Access::Write(b) => self.mem.write_full(&b[..n], base)?,
        }
        Ok(n)
    }

    fn bar_rw(
        &self,
        st: &mut State,
        region: RegionDesc,
        pos: u64,
        acc: Access<'_>,
    ) -> Result<usize, Errno> {
        if pos >= region.size {
            return Err(Errno::EINVAL);
        }
        let n = (acc.len() as u64).min(region.size - pos);
        let RegionKind::Bar(bar) = region.kind else {
            return Err(Errno::EINVAL);
        };
        let (blk_lo, blk_hi) = (self.layout.comp_off, self.layout.comp_end());
        let in_block = bar == self.layout.comp_bar && pos < blk_hi && pos + n > blk_lo;
        if in_block && self.layout.cxl && self.cfg.revision == UapiRevision::V3 {
            return Err(Errno::EINVAL);
        }
        let n = n as usize;
        // v4: the HDM block reads all-ones and drops writes; the count is still full.
        let (ex_lo, ex_hi) = self.layout.excluded();
        let hidden = |p: u64| {
            self.layout.cxl
                && self.cfg.revision == UapiRevision::V4
                && bar == self.layout.comp_bar
                && (ex_lo..ex_hi).contains(&p)
        };
        match acc {
            Access::Read(b) => {
                for (i, byte) in b[..n].iter_mut().enumerate() {
                    let p = pos + i as u64;
                    *byte = if hidden(p) {
                        0xFF
                    } else if bar == self.layout.comp_bar && (blk_lo..blk_hi).contains(&p) {
                        let rel = p - blk_lo;
                        st.hw_comp.block_read(rel & !3).to_le_bytes()[(rel & 3) as usize]
                    } else {
                        let mut one = [0u8];
                        self.mem.read_full(&mut one, region.offset + p)?;
                        one[0]
                    };
                }
            }
            Access::Write(b) => {
                st.mem_track.written();
                let mut i = 0usize;
                while i < n {
                    let p = pos + i as u64;
                    if hidden(p) {
                        i += 1;
                    } else if bar == self.layout.comp_bar && (blk_lo..blk_hi).contains(&p) {
                        // Raw access into the block reaches hardware (v2 does not block it),
                        // merged into the containing dword.
                        let rel = p - blk_lo;
                        let d = rel & !3;
                        let mut bytes = st.hw_comp.block_read(d).to_le_bytes();
                        while i < n && (pos + i as u64) & !3 == blk_lo + d {
                            bytes[((pos + i as u64 - blk_lo) & 3) as usize] = b[i];
                            i += 1;
                        }
                        st.hw_comp.block_write(d, u32::from_le_bytes(bytes));
                    } else {
                        self.mem.write_full(&b[i..i + 1], region.offset + p)?;
                        i += 1;
                    }
                }
            }
        }
        Ok(n)
    }
}

impl State {
    pub(super) fn check_open(&self) -> Result<(), Errno> {
        if self.open {
            Ok(())
        } else {
            Err(Errno::ENODEV)
        }
    }
}
