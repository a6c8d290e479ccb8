//! The "hardware" component register block: CXL.cache/mem capability array (spec §3.4
//! synthetic example: RAS at CM+0x100, HDM at CM+0x200) and the HDM decoders.

use super::config::SimConfig;
use super::hdm::HdmRegs;
use super::layout::{HDM_CM_OFFSET, RAS_CM_OFFSET};
use crate::regs::component::{
    CAP_ID_HDM, CAP_ID_HEADER, CAP_ID_RAS, CM_OFFSET, CmCapEntry, CmCapHeader,
};
use crate::regs::hdm::{DecoderCtrl, HdmCapability};

/// Hardware component registers.
#[derive(Clone, Debug)]
pub struct HwComponent {
    /// Dwords of the CM area from its base up to the HDM block (header, array, RAS).
    pub cm_prefix: Vec<u32>,
    /// The HDM decoder block.
    pub hdm: HdmRegs,
    firmware: HdmRegs,
}

impl HwComponent {
    /// Power-on state after firmware ran.
    pub fn new(cfg: &SimConfig) -> Self {
        let mut cm_prefix = vec![0u32; (HDM_CM_OFFSET / 4) as usize];
        cm_prefix[0] = CmCapHeader::new()
            .with_cap_id(CAP_ID_HEADER)
            .with_version(1)
            .with_cm_version(1)
            .with_array_size(2)
            .into_bits();
        cm_prefix[1] = CmCapEntry::new()
            .with_cap_id(CAP_ID_RAS)
            .with_version(2)
            .with_pointer(RAS_CM_OFFSET as u16)
            .into_bits();
        cm_prefix[2] = CmCapEntry::new()
            .with_cap_id(CAP_ID_HDM)
            .with_version(1)
            .with_pointer(HDM_CM_OFFSET as u16)
            .into_bits();
        let raw = HdmCapability::encode_decoder_count(cfg.decoder_count).unwrap_or(0);
        let cap = HdmCapability::new()
            .with_decoder_count_raw(raw)
            .with_a11to8_interleave(true)
            .with_a14to12_interleave(true)
            .with_poison_on_decode_error(cfg.poison_capable)
            .with_uio_capable(cfg.uio_capable)
            .with_coherency_models(1);
        let mut hdm = HdmRegs::new(cap, cfg.decoder_count);
        if cfg.firmware_committed {
            hdm.global = hdm.global.with_hdm_decoder_enable(true);
            let ctrl = DecoderCtrl::new()
                .with_commit(true)
                .with_committed(true)
                .with_lock_on_commit(cfg.firmware_locked);
            hdm.program(0, cfg.host_hpa, cfg.dpa_size, ctrl);
        }
        Self {
            cm_prefix,
            firmware: hdm.clone(),
            hdm,
        }
    }

    /// Dword at `off` relative to the CM base.
    pub fn cm_read(&self, off: u64) -> u32 {
        if off < HDM_CM_OFFSET {
            return self.cm_prefix.get((off / 4) as usize).copied().unwrap_or(0);
        }
        self.hdm.read(off - HDM_CM_OFFSET)
    }

    /// Dword at `off` relative to the component block start.
    pub fn block_read(&self, off: u64) -> u32 {
        match off.checked_sub(CM_OFFSET) {
            Some(cm) => self.cm_read(cm),
            None => 0,
        }
    }

    /// Raw dword write at `off` relative to the component block (hardware semantics).
    pub fn block_write(&mut self, off: u64, v: u32) {
        if let Some(h) = off.checked_sub(CM_OFFSET + HDM_CM_OFFSET) {
            self.hdm.hw_write(h, v);
        }
    }

    /// Effect of a function or CXL reset on the decoders.
    pub fn reset(&mut self, recommit: bool) {
        if recommit {
            self.hdm = self.firmware.clone();
        } else {
            self.hdm = HdmRegs::new(self.hdm.cap, self.hdm.decoders.len() as u32);
        }
    }
}
