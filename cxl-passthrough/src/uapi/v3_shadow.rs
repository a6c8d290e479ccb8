//! The v3 kernel's rules for a write to its HDM decoder shadow (COMP_REGS, docs/uapi.md;
//! the v3 contract's shadow rules): the one definition both the simulator's v3 mode (which
//! models the kernel) and the runtime's v4 decoder view (which gives a v4 guest the v3
//! behaviour the boot-time lock is written for) apply. Pure: no I/O.

use crate::regs::hdm::{DecoderCtrl, DecoderReg};

/// What decoder register `reg` holds after the guest writes `v` to it, on a decoder
/// whose Control register is `cur`; `None`: the write is dropped. BASE/SIZE follow
/// [`range_write_allowed`], Control follows [`ctrl_after_write`], the target list and
/// reserved registers store the value.
pub fn decoder_reg_after_write(reg: DecoderReg, cur: DecoderCtrl, v: u32) -> Option<u32> {
    match reg {
        DecoderReg::BaseLo | DecoderReg::BaseHi | DecoderReg::SizeLo | DecoderReg::SizeHi => {
            range_write_allowed(cur).then_some(v)
        }
        DecoderReg::Ctrl => Some(ctrl_after_write(cur, DecoderCtrl::from_bits(v)).into_bits()),
        DecoderReg::TargetListLo | DecoderReg::TargetListHi | DecoderReg::Reserved => Some(v),
    }
}

/// Whether a BASE or SIZE write takes effect on a decoder whose Control register is
/// `ctrl`: dropped while the decoder is committed or Lock On Commit is set.
pub fn range_write_allowed(ctrl: DecoderCtrl) -> bool {
    !ctrl.committed() && !ctrl.lock_on_commit()
}

/// The Control register after `written` is written over `cur`. A committed decoder
/// honours only COMMIT (cleared: COMMITTED and Lock On Commit clear too); an uncommitted
/// one stores the written value without the hardware-owned COMMITTED and Error Not
/// Committed, and COMMIT commits at once.
pub fn ctrl_after_write(cur: DecoderCtrl, written: DecoderCtrl) -> DecoderCtrl {
    if cur.committed() {
        let c = cur.with_commit(written.commit());
        if written.commit() {
            c
        } else {
            c.with_committed(false).with_lock_on_commit(false)
        }
    } else {
        written
            .with_committed(written.commit())
            .with_error_not_committed(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decoder_register_follows_its_rule() {
        let locked = DecoderCtrl::new()
            .with_commit(true)
            .with_committed(true)
            .with_lock_on_commit(true);
        for reg in [
            DecoderReg::BaseLo,
            DecoderReg::BaseHi,
            DecoderReg::SizeLo,
            DecoderReg::SizeHi,
        ] {
            assert_eq!(decoder_reg_after_write(reg, locked, 7), None, "{reg:?}");
            assert_eq!(
                decoder_reg_after_write(reg, DecoderCtrl::new(), 7),
                Some(7),
                "{reg:?}"
            );
        }
        for reg in [
            DecoderReg::TargetListLo,
            DecoderReg::TargetListHi,
            DecoderReg::Reserved,
        ] {
            assert_eq!(decoder_reg_after_write(reg, locked, 7), Some(7), "{reg:?}");
        }
        let ig = DecoderCtrl::new().with_commit(true).with_ig(3);
        assert_eq!(
            decoder_reg_after_write(DecoderReg::Ctrl, locked, ig.into_bits()),
            Some(ctrl_after_write(locked, ig).into_bits())
        );
    }

    #[test]
    fn a_committed_decoder_honours_only_commit() {
        let cur = DecoderCtrl::new()
            .with_commit(true)
            .with_committed(true)
            .with_lock_on_commit(true);
        let ig = DecoderCtrl::new().with_commit(true).with_ig(3);
        assert_eq!(ctrl_after_write(cur, ig), cur);
        let off = ctrl_after_write(cur, DecoderCtrl::new().with_lock_on_commit(true));
        assert!(!off.commit() && !off.committed() && !off.lock_on_commit());
        assert!(!range_write_allowed(cur));
    }

    #[test]
    fn an_uncommitted_decoder_stores_the_write_and_commits_at_once() {
        let written = DecoderCtrl::new()
            .with_commit(true)
            .with_lock_on_commit(true)
            .with_error_not_committed(true)
            .with_ig(2);
        let new = ctrl_after_write(DecoderCtrl::new(), written);
        assert!(new.committed() && new.lock_on_commit() && !new.error_not_committed());
        assert_eq!(new.ig(), 2);
        let stored = ctrl_after_write(DecoderCtrl::new(), DecoderCtrl::new().with_committed(true));
        assert!(!stored.committed());
        assert!(range_write_allowed(DecoderCtrl::new()));
        assert!(!range_write_allowed(
            DecoderCtrl::new().with_lock_on_commit(true)
        ));
    }
}
