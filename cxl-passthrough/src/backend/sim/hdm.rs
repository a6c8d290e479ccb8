//! An HDM decoder register block (hardware or shadow): dword storage by offset.

use crate::regs::hdm::{
    DecoderCtrl, DecoderReg, HdmCapability, HdmField, HdmGlobalControl, hdm_field, split_lo_hi,
};

/// Dword image of an HDM decoder capability structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdmRegs {
    /// HDM Decoder Capability.
    pub cap: HdmCapability,
    /// HDM Decoder Global Control.
    pub global: HdmGlobalControl,
    /// Per-decoder registers, indexed by `DecoderReg` order.
    pub decoders: Vec<[u32; 8]>,
}

fn reg_index(r: DecoderReg) -> usize {
    (r.offset() / 4) as usize
}

impl HdmRegs {
    /// A block with `count` zeroed decoders.
    pub fn new(cap: HdmCapability, count: u32) -> Self {
        Self {
            cap,
            global: HdmGlobalControl::new(),
            decoders: vec![[0; 8]; count as usize],
        }
    }

    /// Register `r` of decoder `n` (0 when absent).
    pub fn get(&self, n: u32, r: DecoderReg) -> u32 {
        self.decoders.get(n as usize).map_or(0, |d| d[reg_index(r)])
    }

    /// Sets register `r` of decoder `n` (ignored when absent).
    pub fn set(&mut self, n: u32, r: DecoderReg, v: u32) {
        if let Some(d) = self.decoders.get_mut(n as usize) {
            d[reg_index(r)] = v;
        }
    }

    /// Control register of decoder `n`.
    pub fn ctrl(&self, n: u32) -> DecoderCtrl {
        DecoderCtrl::from_bits(self.get(n, DecoderReg::Ctrl))
    }

    /// Programs decoder `n` with base, size and control.
    pub fn program(&mut self, n: u32, base: u64, size: u64, ctrl: DecoderCtrl) {
        let (blo, bhi) = split_lo_hi(base);
        let (slo, shi) = split_lo_hi(size);
        self.set(n, DecoderReg::BaseLo, blo);
        self.set(n, DecoderReg::BaseHi, bhi);
        self.set(n, DecoderReg::SizeLo, slo);
        self.set(n, DecoderReg::SizeHi, shi);
        self.set(n, DecoderReg::Ctrl, ctrl.into_bits());
    }

    /// Size of the block in bytes.
    pub fn size(&self) -> u64 {
        0x10 + 0x20 * self.decoders.len() as u64
    }

    /// Dword at `off` (block-relative); 0 for reserved or out-of-range offsets.
    pub fn read(&self, off: u64) -> u32 {
        if off >= self.size() {
            return 0;
        }
        match hdm_field(off) {
            Some(HdmField::Capability) => self.cap.into_bits(),
            Some(HdmField::GlobalControl) => self.global.into_bits(),
            Some(HdmField::Decoder(n, r)) => self.get(n, r),
            Some(HdmField::Reserved) | None => 0,
        }
    }

    /// Decodes `off` into a field if it lies inside this block.
    pub fn field(&self, off: u64) -> Option<HdmField> {
        if off >= self.size() {
            return None;
        }
        match hdm_field(off)? {
            HdmField::Decoder(n, _) if n as usize >= self.decoders.len() => None,
            f => Some(f),
        }
    }

    /// Plain hardware write semantics: registers of a committed and locked decoder are
    /// frozen; an unlocked CTRL write commits immediately (COMMITTED := COMMIT).
    pub fn hw_write(&mut self, off: u64, v: u32) {
        match self.field(off) {
            Some(HdmField::GlobalControl) => self.global = HdmGlobalControl::from_bits(v),
            Some(HdmField::Decoder(n, r)) => {
                let cur = self.ctrl(n);
                if cur.lock_on_commit() && cur.committed() {
                    return;
                }
                match r {
                    DecoderReg::Ctrl => {
                        let w = DecoderCtrl::from_bits(v & !DecoderCtrl::RESERVED);
                        self.set(
                            n,
                            r,
                            w.with_committed(w.commit())
                                .with_error_not_committed(false)
                                .into_bits(),
                        );
                    }
                    DecoderReg::Reserved => {}
                    _ => self.set(n, r, v),
                }
            }
            _ => {}
        }
    }
}
