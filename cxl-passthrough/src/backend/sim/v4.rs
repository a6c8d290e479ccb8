//! The v4 ("vfio-cxl module") driver lifecycle (spec v4 §4): bind rules that fall back
//! to plain vfio-pci, the HDM gate, and the CXL reset that replaces every FLR (open,
//! close, `VFIO_DEVICE_RESET`, guest FLR, the DVSEC doorbell): it closes the gate, zaps
//! the memory mappings, resets the function, restores firmware's decoder, always wipes
//! device memory, and reopens the gate only on success.

use super::config::{Errno, SimConfig};
use super::dvsec_v4::DvsecV4;
use super::{CxlState, DEVICE_DVSEC, SimDevice, State};
use crate::regs::dvsec::off::LENGTH_REV2;
use crate::regs::pci::{COMMAND, COMMAND_MEMORY};

impl SimDevice {
    /// Whether v4's provider init accepts the device (else plain vfio-pci): CXL.cache
    /// and CXL.mem capable, one decoder (never interleaved here), CXL reset capable, and
    /// a host-committed decoder 0 (its HPA range).
    pub(super) fn v4_binds(cfg: &SimConfig) -> bool {
        cfg.cache_capable
            && cfg.decoder_count == 1
            && cfg.cxl_reset_capable
            && cfg.firmware_committed
    }

    fn set_gate(st: &mut State, open: bool) {
        if let Some(CxlState::V4 { hdm_valid, .. }) = &mut st.cxl {
            *hdm_valid = open;
        }
    }

    /// v4: the gate is open and the (virtual) Memory Space bit is set.
    pub(super) fn v4_dpa_allowed(st: &State) -> bool {
        matches!(
            st.cxl,
            Some(CxlState::V4 {
                hdm_valid: true,
                ..
            })
        ) && st.hw_cfg.get16(COMMAND) & COMMAND_MEMORY != 0
    }

    /// The CXL reset: gate closed and mappings zapped, then the function reset with
    /// memory wiped and firmware's decoder restored; the gate reopens only on success.
    pub(super) fn v4_cxl_reset(&self, st: &mut State) -> Result<(), Errno> {
        Self::set_gate(st, false);
        self.rearm_dpa(st)?;
        if !st.faults.is_empty() && st.faults.take_reset_fail() {
            return Err(Errno::EIO);
        }
        st.stats.hw_resets += 1;
        st.hw_comp.reset(true);
        st.mem_track.written();
        st.dpa
            .clear(&self.mem, self.layout.dpa_file_off, self.layout.dpa_size)?;
        Self::set_gate(st, true);
        self.rearm_dpa(st)
    }

    /// Open: CXL reset (its failure fails the open), DVSEC snapshot, gate open, and
    /// Memory Space off in the config vfio shows (vfio's virtual COMMAND starts with
    /// it clear; the v4 selftest sets it before touching device memory).
    pub(super) fn v4_open(&self, st: &mut State) -> Result<(), Errno> {
        let cmd = st.hw_cfg.get16(COMMAND);
        st.hw_cfg.put16(COMMAND, cmd & !COMMAND_MEMORY);
        self.v4_cxl_reset(st)?;
        if let Some(CxlState::V4 { dvsec, .. }) = &mut st.cxl {
            *dvsec = DvsecV4::snapshot(&st.hw_cfg, DEVICE_DVSEC, LENGTH_REV2);
        }
        Ok(())
    }

    /// Close: gate closed, then a CXL reset (memory wiped); a failure is not reported.
    pub(super) fn v4_close(&self, st: &mut State) {
        if self.v4_cxl_reset(st).is_err() {
            Self::set_gate(st, false);
        }
        Self::set_gate(st, false);
        let _ = self.rearm_dpa(st);
    }

    /// A write to the DVSEC through the config region, with the doorbells.
    pub(super) fn v4_dvsec_write(&self, st: &mut State, o: u16, data: &[u8]) -> Result<(), Errno> {
        let Some(CxlState::V4 { dvsec, .. }) = &mut st.cxl else {
            return Ok(());
        };
        if dvsec.write(o, data).cxl_reset {
            let ok = self.v4_cxl_reset(st).is_ok();
            if let Some(CxlState::V4 { dvsec, .. }) = &mut st.cxl {
                dvsec.reset_done(ok);
            }
        }
        Ok(())
    }
}
