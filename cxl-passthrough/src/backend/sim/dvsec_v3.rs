//! v3 CXL Device DVSEC shadow (spec §7.7): the body `[0x0A, length)` is snapshotted at
//! bind and owned by CXL core; writes never reach hardware.

use super::config_space::HwConfig;
use crate::regs::dvsec::off;

/// Start of the shadowed body.
pub const BODY_START: u16 = off::CAPABILITY;

/// The v3 DVSEC shadow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DvsecV3 {
    base: u16,
    body: Vec<u8>,
    latched: bool,
}

impl DvsecV3 {
    /// Snapshots the body from hardware (bind).
    pub fn snapshot(hw: &HwConfig, base: u16, len: u16) -> Self {
        let body = (BODY_START..len).map(|r| hw.byte(base + r)).collect();
        Self {
            base,
            body,
            latched: false,
        }
    }

    /// Whether config offset `o` is inside the shadowed body.
    pub fn contains(&self, o: u16) -> bool {
        o >= self.base + BODY_START && usize::from(o - self.base - BODY_START) < self.body.len()
    }

    /// The body boundary (config offset), where accesses are clipped.
    pub fn body_start(&self) -> u16 {
        self.base + BODY_START
    }

    fn get(&self, rel: u16, width: u16) -> u32 {
        let mut v = 0u32;
        for k in 0..width {
            let b = self
                .body
                .get(usize::from(rel + k - BODY_START))
                .copied()
                .unwrap_or(0);
            v |= u32::from(b) << (8 * k);
        }
        v
    }

    fn put(&mut self, rel: u16, width: u16, v: u32) {
        for k in 0..width {
            if let Some(b) = self.body.get_mut(usize::from(rel + k - BODY_START)) {
                *b = (v >> (8 * k)) as u8;
            }
        }
    }

    /// Reads from the shadow (`o` inside the body).
    pub fn read(&self, o: u16, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let rel = o + i as u16 - self.base;
            *b = self.get(rel, 1) as u8;
        }
    }

    /// Applies a write (`o` inside the body); the field is chosen by the start offset
    /// and the data merged at field width, bytes past the field are ignored.
    pub fn write(&mut self, o: u16, data: &[u8]) {
        let rel = o - self.base;
        let (start, width) = if (off::range_size_hi(0)..off::CAPABILITY3).contains(&rel) {
            (rel & !3, 4)
        } else {
            (rel & !1, 2)
        };
        let mut bytes = self.get(start, width).to_le_bytes();
        for k in 0..width {
            let at = start + k;
            if at >= rel && usize::from(at - rel) < data.len() {
                bytes[usize::from(k)] = data[usize::from(at - rel)];
            }
        }
        let v = u32::from_le_bytes(bytes);
        match start {
            off::CONTROL | off::CONTROL2 if !self.latched => self.put(start, width, v),
            off::STATUS | off::STATUS2 => {
                let cur = self.get(start, width);
                self.put(start, width, cur & !v);
            }
            off::LOCK => {
                let cur = self.get(start, width);
                if cur & 1 == 0 && v & 1 == 1 {
                    self.put(start, width, cur | 1);
                    self.latched = true;
                }
            }
            _ => {}
        }
    }
}
