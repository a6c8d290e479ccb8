//! The guest's view of a v4 HDM decoder block, kept in userspace.
//!
//! A v4 kernel serves COMP_REGS reads live from hardware (BASE = host HPA) and absorbs
//! every write, so the decoder a guest sees (BASE = window GPA, COMMIT → COMMITTED,
//! LOCK) must be emulated by the VMM. [`HdmView`] is that register file: seeded from the
//! live block, then changed only by writes, with the commit rules of the v3 shadow
//! (which the boot-time lock sequence in [`super::hdm_lock`] is written for). Pure: no
//! I/O.

use crate::regs::hdm::{DecoderCtrl, DecoderReg, HdmField, hdm_field};
use crate::uapi::v3_shadow;

/// A userspace HDM decoder block (dwords, HDM-block relative).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HdmView {
    words: Vec<u32>,
}

impl HdmView {
    /// A view holding `words` (the live block as read from the kernel).
    pub fn seeded(words: Vec<u32>) -> Self {
        Self { words }
    }

    /// Whether the view was seeded.
    pub fn is_seeded(&self) -> bool {
        !self.words.is_empty()
    }

    /// The dword at HDM-block offset `off` (0 outside the block).
    pub fn read(&self, off: u64) -> u32 {
        self.words.get((off / 4) as usize).copied().unwrap_or(0)
    }

    fn set(&mut self, off: u64, v: u32) {
        if let Some(w) = self.words.get_mut((off / 4) as usize) {
            *w = v;
        }
    }

    /// Applies a dword write at HDM-block offset `off`: the capability register is
    /// read-only; BASE and SIZE change only while the decoder is neither committed nor
    /// locked; a CTRL write with COMMIT commits (COMMITTED set, LOCK as written), one
    /// without COMMIT on a committed decoder decommits it (COMMITTED and LOCK clear).
    pub fn write(&mut self, off: u64, v: u32) {
        let Some(field) = hdm_field(off) else {
            return;
        };
        match field {
            HdmField::Capability | HdmField::Reserved => {}
            HdmField::GlobalControl => self.set(off, v),
            HdmField::Decoder(n, reg) => {
                let cur = DecoderCtrl::from_bits(self.read(DecoderReg::Ctrl.at(n)));
                if let Some(v) = v3_shadow::decoder_reg_after_write(reg, cur, v) {
                    self.set(off, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::hdm::HDM_GLOBAL_CONTROL;

    fn committed_view() -> HdmView {
        let ctrl = DecoderCtrl::new()
            .with_commit(true)
            .with_committed(true)
            .with_lock_on_commit(true)
            .into_bits();
        // capability, global control, 2 reserved, decoder 0 (BASE = host HPA).
        HdmView::seeded(vec![
            0x1,
            0x2,
            0,
            0,
            0x5000_0000,
            0x23,
            0x2000_0000,
            0,
            ctrl,
            0,
            0,
            0,
        ])
    }

    #[test]
    fn locked_decoder_ignores_base_until_decommitted() {
        let mut v = committed_view();
        v.write(DecoderReg::BaseLo.at(0), 0x1000_0000);
        assert_eq!(v.read(DecoderReg::BaseLo.at(0)), 0x5000_0000);
        v.write(DecoderReg::Ctrl.at(0), 0);
        let c = DecoderCtrl::from_bits(v.read(DecoderReg::Ctrl.at(0)));
        assert!(!c.committed() && !c.lock_on_commit());
        v.write(DecoderReg::BaseLo.at(0), 0x1000_0000);
        v.write(DecoderReg::BaseHi.at(0), 0x1);
        v.write(
            DecoderReg::Ctrl.at(0),
            DecoderCtrl::new()
                .with_commit(true)
                .with_lock_on_commit(true)
                .into_bits(),
        );
        let c = DecoderCtrl::from_bits(v.read(DecoderReg::Ctrl.at(0)));
        assert!(c.committed() && c.lock_on_commit());
        assert_eq!(v.read(DecoderReg::BaseLo.at(0)), 0x1000_0000);
        assert_eq!(v.read(DecoderReg::BaseHi.at(0)), 0x1);
    }

    #[test]
    fn capability_is_read_only_and_out_of_block_writes_vanish() {
        let mut v = committed_view();
        v.write(0, 0xFFFF_FFFF);
        assert_eq!(v.read(0), 1);
        v.write(HDM_GLOBAL_CONTROL, 0x3);
        assert_eq!(v.read(HDM_GLOBAL_CONTROL), 0x3);
        v.write(0x1000, 7);
        assert_eq!(v.read(0x1000), 0);
        v.write(3, 7);
        assert_eq!(v, {
            let mut w = committed_view();
            w.write(HDM_GLOBAL_CONTROL, 0x3);
            w
        });
    }
}
