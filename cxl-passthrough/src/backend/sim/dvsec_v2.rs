//! v2 CXL Device DVSEC virtualization (spec §6.4, reset-series final routing):
//! a vconfig shadow re-seeded from hardware at every open, some writes forwarded.

use super::config_space::HwConfig;
use crate::regs::dvsec::{DvsecControl, DvsecControl2, DvsecLock, DvsecStatus2, off};

/// Capability2 bit 6: Mod_Completion_Capable.
const CAP2_MOD_COMPLETION: u16 = 1 << 6;
/// Capability3 bit 3: Volatile_HDM_Configurability.
const CAP3_VOLATILE_HDM: u16 = 1 << 3;
/// Capability3 bit 4: P2P_Mem_Capable.
const CAP3_P2P_MEM: u16 = 1 << 4;
/// Status bit 14: Viral_Status (RW1C).
const STATUS_VIRAL: u16 = 1 << 14;
/// Status2 bits 1–2 (reset complete / error) live in the shadow.
const STATUS2_RESET_BITS: u16 = 0b110;
/// Status2 bit 3: Volatile_HDM_Preservation_Error (RW1CS).
const STATUS2_VOLATILE_ERR: u16 = 1 << 3;

/// The registers a write can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reg {
    Control,
    Status,
    Control2,
    Status2,
    Lock,
    RangeBase(usize),
}

const REGS: [(u16, u16, Reg); 9] = [
    (off::CONTROL, 2, Reg::Control),
    (off::STATUS, 2, Reg::Status),
    (off::CONTROL2, 2, Reg::Control2),
    (off::STATUS2, 2, Reg::Status2),
    (off::LOCK, 2, Reg::Lock),
    (off::range_base_hi(0), 4, Reg::RangeBase(0)),
    (off::range_base_lo(0), 4, Reg::RangeBase(1)),
    (off::range_base_hi(1), 4, Reg::RangeBase(2)),
    (off::range_base_lo(1), 4, Reg::RangeBase(3)),
];

/// The v2 DVSEC shadow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DvsecV2 {
    base: u16,
    len: u16,
    /// Shadow Control.
    pub control: u16,
    /// Shadow Status.
    pub status: u16,
    /// Shadow Control2 (bits 1 and 2 always 0).
    pub control2: u16,
    /// Shadow Status2 (only bits 1–2 are served from here).
    pub status2: u16,
    /// Shadow Lock.
    pub lock: u16,
    /// vconfig Range1/2 Base Hi/Lo (stored, never read back: reads go to hardware).
    pub range_base: [u32; 4],
}

/// What a DVSEC write asks the device to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DvsecEffect {
    /// The guest set Initiate_CXL_Reset on a CXL-reset-capable device.
    pub cxl_reset: bool,
}

impl DvsecV2 {
    /// Seeds the shadow from hardware (open); Control.IO_Enable forced to 1.
    pub fn seed(hw: &HwConfig, base: u16, len: u16) -> Self {
        Self {
            base,
            len,
            control: DvsecControl::from_bits(hw.get16(base + off::CONTROL))
                .with_io_enable(true)
                .into_bits(),
            status: hw.get16(base + off::STATUS),
            control2: hw.get16(base + off::CONTROL2) & !0b110,
            status2: 0,
            lock: hw.get16(base + off::LOCK),
            range_base: [
                hw.get32(base + off::range_base_hi(0)),
                hw.get32(base + off::range_base_lo(0)),
                hw.get32(base + off::range_base_hi(1)),
                hw.get32(base + off::range_base_lo(1)),
            ],
        }
    }

    /// Whether config offset `o` is inside this DVSEC.
    pub fn contains(&self, o: u16) -> bool {
        o >= self.base && o - self.base < self.len
    }

    fn locked(&self) -> bool {
        DvsecLock::from_bits(self.lock).config_lock()
    }

    /// The value a read of the 16-bit register at DVSEC-relative `reg` returns.
    fn view16(&self, hw: &HwConfig, reg: u16) -> u16 {
        match reg {
            off::CONTROL => self.control,
            off::STATUS => self.status,
            off::CONTROL2 => self.control2,
            off::STATUS2 => {
                (hw.get16(self.base + reg) & !STATUS2_RESET_BITS)
                    | (self.status2 & STATUS2_RESET_BITS)
            }
            off::LOCK => self.lock,
            _ => hw.get16(self.base + reg),
        }
    }

    /// Reads `buf.len()` bytes at config offset `o` (inside the DVSEC).
    pub fn read(&self, hw: &HwConfig, o: u16, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let rel = o + i as u16 - self.base;
            let v = self.view16(hw, rel & !1);
            *b = v.to_le_bytes()[usize::from(rel & 1)];
        }
    }

    fn merged(
        &self,
        hw: &HwConfig,
        reg: Reg,
        start: u16,
        width: u16,
        rel: u16,
        data: &[u8],
    ) -> u32 {
        let cur: u32 = match reg {
            Reg::Status | Reg::Status2 => 0,
            Reg::RangeBase(i) => self.range_base[i],
            _ => u32::from(self.view16(hw, start)),
        };
        let mut bytes = cur.to_le_bytes();
        for k in 0..width {
            let at = start + k;
            if at >= rel && usize::from(at - rel) < data.len() {
                bytes[usize::from(k)] = data[usize::from(at - rel)];
            }
        }
        u32::from_le_bytes(bytes)
    }

    /// Applies a guest write of `data` at config offset `o`.
    pub fn write(
        &mut self,
        hw: &mut HwConfig,
        o: u16,
        data: &[u8],
        reset_capable: bool,
    ) -> DvsecEffect {
        let mut effect = DvsecEffect::default();
        let rel = o - self.base;
        let end = rel + data.len() as u16;
        for (start, width, reg) in REGS {
            if start >= end || start + width <= rel {
                continue;
            }
            let v = self.merged(hw, reg, start, width, rel, data);
            let v16 = v as u16;
            match reg {
                Reg::Control if !self.locked() => {
                    let mut c = DvsecControl::from_bits(v16)
                        .with_rsvd13(false)
                        .with_rsvd15(false);
                    if hw.get16(self.base + off::CAPABILITY3) & CAP3_P2P_MEM == 0 {
                        c.set_p2p_mem_enable(false);
                    }
                    self.control = c.with_io_enable(true).into_bits();
                }
                Reg::Status => self.status &= !(v16 & STATUS_VIRAL),
                Reg::Control2 => {
                    let mut c = DvsecControl2::from_bits(v16 & 0x3F);
                    if hw.get16(self.base + off::CAPABILITY3) & CAP3_VOLATILE_HDM == 0 {
                        c.set_desired_volatile_hdm(false);
                    }
                    if hw.get16(self.base + off::CAPABILITY2) & CAP2_MOD_COMPLETION == 0 {
                        c.set_mod_completion_enable(false);
                    }
                    if c.initiate_cache_wbi() {
                        // Forwarded: hardware runs the write-back/invalidate at once.
                        let st = DvsecStatus2::from_bits(hw.get16(self.base + off::STATUS2));
                        hw.put16(
                            self.base + off::STATUS2,
                            st.with_cache_invalid(true).into_bits(),
                        );
                        hw.put16(
                            self.base + off::CONTROL2,
                            DvsecControl2::new()
                                .with_disable_caching(c.disable_caching())
                                .into_bits(),
                        );
                    }
                    if c.initiate_cxl_reset() && reset_capable {
                        effect.cxl_reset = true;
                    }
                    self.control2 = c
                        .with_initiate_cache_wbi(false)
                        .with_initiate_cxl_reset(false)
                        .into_bits();
                }
                Reg::Status2 => {
                    let cap3 = hw.get16(self.base + off::CAPABILITY3);
                    if v16 & STATUS2_VOLATILE_ERR != 0 && cap3 & CAP3_VOLATILE_HDM != 0 {
                        let st = hw.get16(self.base + off::STATUS2);
                        hw.put16(self.base + off::STATUS2, st & !STATUS2_VOLATILE_ERR);
                    }
                }
                Reg::Lock if !self.locked() => self.lock = v16 & 1,
                Reg::RangeBase(i) => {
                    self.range_base[i] = if i % 2 == 1 { v & 0xF000_0000 } else { v };
                }
                _ => {}
            }
        }
        effect
    }
}
