//! v3 COMP_REGS region (spec §7.3, §7.4): 64 KiB, offset 0 = component block, any
//! multiple of 4 bytes, no clamping, snapshot at bind that survives close/reopen, and
//! the COMMITTED state machine.

use super::config::Errno;
use super::hdm::HdmRegs;
use super::layout::HDM_CM_OFFSET;
use crate::regs::component::{CM_OFFSET, COMPONENT_BLOCK_SIZE};
use crate::regs::hdm::{HdmField, HdmGlobalControl};
use crate::uapi::v3_shadow;

/// Block offset of the HDM decoder capability.
const HDM_OFF: u64 = CM_OFFSET + HDM_CM_OFFSET;

/// The v3 shadows (owned by CXL core in the kernel; snapshotted once at bind).
#[derive(Clone, Debug)]
pub struct V3Comp {
    /// CM-relative dwords `[0, HDM offset)`.
    pub cm: Vec<u32>,
    /// HDM shadow.
    pub hdm: HdmRegs,
}

impl V3Comp {
    fn check(pos: u64, count: usize) -> Result<(), Errno> {
        let count = count as u64;
        if pos > COMPONENT_BLOCK_SIZE || count > COMPONENT_BLOCK_SIZE - pos {
            return Err(Errno::EINVAL);
        }
        if !pos.is_multiple_of(4) || !count.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    /// Dword at a block-relative offset.
    pub fn dword(&self, pos: u64) -> u32 {
        if pos < CM_OFFSET {
            0
        } else if pos < HDM_OFF {
            self.cm
                .get(((pos - CM_OFFSET) / 4) as usize)
                .copied()
                .unwrap_or(0)
        } else {
            self.hdm.read(pos - HDM_OFF)
        }
    }

    /// pread of any multiple of 4 bytes.
    pub fn read(&self, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        Self::check(pos, buf.len())?;
        for (i, chunk) in buf.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&self.dword(pos + 4 * i as u64).to_le_bytes());
        }
        Ok(buf.len())
    }

    /// pwrite of any multiple of 4 bytes; writes outside the HDM block are dropped.
    pub fn write(&mut self, pos: u64, buf: &[u8]) -> Result<usize, Errno> {
        Self::check(pos, buf.len())?;
        for (i, c) in buf.chunks_exact(4).enumerate() {
            let off = pos + 4 * i as u64;
            if let Some(h) = off.checked_sub(HDM_OFF) {
                self.hdm_write(h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
        Ok(buf.len())
    }

    /// Applies a write to the HDM shadow at block-relative `off` (spec §7.4).
    pub fn hdm_write(&mut self, off: u64, v: u32) {
        let Some(field) = self.hdm.field(off) else {
            return;
        };
        match field {
            HdmField::Capability | HdmField::Reserved => {}
            HdmField::GlobalControl => self.hdm.global = HdmGlobalControl::from_bits(v),
            HdmField::Decoder(n, reg) => {
                let cur = self.hdm.ctrl(n);
                if let Some(v) = v3_shadow::decoder_reg_after_write(reg, cur, v) {
                    self.hdm.set(n, reg, v);
                }
            }
        }
    }
}
