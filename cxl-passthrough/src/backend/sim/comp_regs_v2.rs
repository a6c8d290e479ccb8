//! v2 COMP_REGS region (spec §5, §5.1): one aligned dword per call, CM-relative offsets,
//! a cap-array prefix snapshot and an HDM shadow with the v2 field rules.

use super::config::Errno;
use super::hdm::HdmRegs;
use super::layout::HDM_CM_OFFSET;
use crate::regs::hdm::{DecoderCtrl, DecoderReg, HDM_LO_RESERVED_MASK, HdmField, HdmGlobalControl};

/// The v2 shadow: `prefix` is snapshotted at bind, `hdm` refreshed at open and reset.
#[derive(Clone, Debug)]
pub struct V2Comp {
    /// CM-relative dwords `[0, HDM offset)`.
    pub prefix: Vec<u32>,
    /// HDM shadow.
    pub hdm: HdmRegs,
    /// Device is CXL.cache capable (BI is writable).
    pub cache_capable: bool,
}

impl V2Comp {
    /// Region size (`hdm_decoder_offset + 0x10 + 0x20 × count`).
    pub fn size(&self) -> u64 {
        HDM_CM_OFFSET + self.hdm.size()
    }

    /// Validates an access the way the v2 rw handler does; `Ok(None)` for count 0.
    fn check(&self, pos: u64, count: usize) -> Result<Option<u64>, Errno> {
        if count == 0 {
            return Ok(None);
        }
        let size = self.size();
        if pos >= size {
            return Err(Errno::EINVAL);
        }
        let n = (count as u64).min(size - pos);
        if n != 4 || !pos.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        Ok(Some(pos))
    }

    /// Dword at a CM-relative offset.
    pub fn dword(&self, pos: u64) -> u32 {
        if pos < HDM_CM_OFFSET {
            self.prefix.get((pos / 4) as usize).copied().unwrap_or(0)
        } else {
            self.hdm.read(pos - HDM_CM_OFFSET)
        }
    }

    /// pread: returns 0 or 4.
    pub fn read(&self, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Some(pos) = self.check(pos, buf.len())? else {
            return Ok(0);
        };
        let v = self.dword(pos).to_le_bytes();
        buf.get_mut(..4).ok_or(Errno::EFAULT)?.copy_from_slice(&v);
        Ok(4)
    }

    /// pwrite: returns 0 or 4; never reaches hardware.
    pub fn write(&mut self, pos: u64, buf: &[u8]) -> Result<usize, Errno> {
        let Some(pos) = self.check(pos, buf.len())? else {
            return Ok(0);
        };
        let b = buf.get(..4).ok_or(Errno::EFAULT)?;
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if let Some(h) = pos.checked_sub(HDM_CM_OFFSET) {
            self.hdm_write(h, v);
        }
        Ok(4)
    }

    /// Applies a write to the HDM shadow at block-relative `off` (spec §5.1).
    pub fn hdm_write(&mut self, off: u64, v: u32) {
        let Some(field) = self.hdm.field(off) else {
            return;
        };
        match field {
            HdmField::Capability | HdmField::Reserved => {}
            HdmField::GlobalControl => {
                let mut g = HdmGlobalControl::from_bits(v & 0b11);
                if !self.hdm.cap.poison_on_decode_error() {
                    g.set_poison_on_decode_error_enable(false);
                }
                self.hdm.global = g;
            }
            HdmField::Decoder(n, reg) => {
                let cur = self.hdm.ctrl(n);
                match reg {
                    DecoderReg::BaseLo | DecoderReg::SizeLo if !cur.lock_on_commit() => {
                        self.hdm.set(n, reg, v & !HDM_LO_RESERVED_MASK)
                    }
                    DecoderReg::BaseHi | DecoderReg::SizeHi if !cur.lock_on_commit() => {
                        self.hdm.set(n, reg, v)
                    }
                    DecoderReg::Ctrl => {
                        let new = self.ctrl_write(cur, DecoderCtrl::from_bits(v));
                        self.hdm.set(n, reg, new.into_bits());
                    }
                    _ => {}
                }
            }
        }
    }

    fn ctrl_write(&self, cur: DecoderCtrl, w: DecoderCtrl) -> DecoderCtrl {
        if cur.lock_on_commit() {
            // Locked: only a LOCK=0 write has an effect, and it clears LOCK alone.
            return if w.lock_on_commit() {
                cur
            } else {
                cur.with_lock_on_commit(false)
            };
        }
        let mut reserved = DecoderCtrl::RESERVED | 0x00FF_0000;
        if !self.hdm.cap.uio_capable() {
            reserved |= (1 << 14) | 0x0F00_0000;
        }
        if !self.cache_capable {
            reserved |= 1 << 13;
        }
        let keep = DecoderCtrl::new()
            .with_committed(true)
            .with_error_not_committed(true)
            .with_target_type_hostonly(true)
            .into_bits();
        let bits = (w.into_bits() & !reserved & !keep) | (cur.into_bits() & keep);
        let new = DecoderCtrl::from_bits(bits);
        new.with_committed(new.commit())
    }

    /// Refreshes the HDM shadow from hardware (open, reset finish): committed and
    /// locked decoders get LOCK cleared and BASE zeroed.
    pub fn refresh(&mut self, hw: &HdmRegs) {
        self.hdm = hw.clone();
        for n in 0..self.hdm.decoders.len() as u32 {
            let c = self.hdm.ctrl(n);
            if c.committed() && c.lock_on_commit() {
                self.hdm.set(
                    n,
                    DecoderReg::Ctrl,
                    c.with_lock_on_commit(false).into_bits(),
                );
                self.hdm.set(n, DecoderReg::BaseLo, 0);
                self.hdm.set(n, DecoderReg::BaseHi, 0);
            }
        }
    }
}
