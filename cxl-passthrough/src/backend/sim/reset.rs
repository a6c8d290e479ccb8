//! Reset flows (spec §6.5 for v2 with the NVIDIA reset series; v3 has no integration).

use super::config::Errno;
use super::faults::Op;
use super::{CxlState, SimDevice, State};
use crate::regs::dvsec::{DvsecCapability, DvsecControl2, DvsecStatus2, off};
use crate::regs::hdm::DecoderReg;
use crate::regs::pci::{COMMAND, COMMAND_MEMORY};

/// Decoders whose BASE the reset series saves and restores.
const BASE_SAVE_LIMIT: u32 = 16;

/// What kind of hardware reset runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HwReset {
    Function,
    Cxl { mem_clr: bool },
}

impl SimDevice {
    /// `VFIO_DEVICE_RESET`.
    pub fn ioctl_reset(&self) -> Result<(), Errno> {
        let mut st = self.lock();
        st.check_open()?;
        if !st.faults.is_empty()
            && let Some(e) = st.faults.errno_for(Op::Reset)
        {
            return Err(e);
        }
        st.stats.resets += 1;
        self.function_reset(&mut st)
    }

    /// Function reset wrapped by the driver (ioctl and, for v2, guest FLR).
    fn function_reset(&self, st: &mut State) -> Result<(), Errno> {
        if matches!(st.cxl, Some(CxlState::V4 { .. })) {
            return self.v4_cxl_reset(st);
        }
        if matches!(st.cxl, Some(CxlState::V2 { .. })) {
            self.prepare(st)?;
            let r = self.hw_reset(st, HwReset::Function);
            self.finish(st, r.is_ok())?;
            r
        } else {
            self.hw_reset(st, HwReset::Function)
        }
    }

    /// Guest FLR through the PCIe Device Control register.
    pub(super) fn guest_flr(&self, st: &mut State) -> Result<(), Errno> {
        // A failed FLR is not reported to the config write.
        match self.function_reset(st) {
            Ok(()) | Err(Errno::EIO) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// v2 guest CXL reset (DVSEC Control2 Initiate_CXL_Reset on a capable device).
    pub(super) fn guest_cxl_reset(&self, st: &mut State) -> Result<(), Errno> {
        let d = super::DEVICE_DVSEC;
        let mem_clr = match &mut st.cxl {
            Some(CxlState::V2 { dvsec, .. }) => {
                dvsec.status2 &= !0b110;
                let cap = DvsecCapability::from_bits(st.hw_cfg.get16(d + off::CAPABILITY));
                DvsecControl2::from_bits(dvsec.control2).cxl_reset_mem_clr_enable()
                    && cap.cxl_reset_mem_clr_capable()
            }
            _ => return Ok(()),
        };
        self.prepare(st)?;
        let r = self.hw_reset(st, HwReset::Cxl { mem_clr });
        self.finish(st, r.is_ok())?;
        let hw = DvsecStatus2::from_bits(st.hw_cfg.get16(d + off::STATUS2))
            .with_cxl_reset_complete(false)
            .with_cxl_reset_error(false);
        let stamp = if r.is_ok() {
            hw.with_cxl_reset_complete(true)
        } else {
            hw.with_cxl_reset_error(true)
        };
        if let Some(CxlState::V2 { dvsec, .. }) = &mut st.cxl {
            dvsec.status2 = stamp.into_bits() & 0b110;
        }
        Ok(())
    }

    /// The device itself resets. Fails (leaving hardware untouched) on an injected
    /// [`super::Fault::ResetFails`].
    fn hw_reset(&self, st: &mut State, kind: HwReset) -> Result<(), Errno> {
        if !st.faults.is_empty() && st.faults.take_reset_fail() {
            return Err(Errno::EIO);
        }
        st.stats.hw_resets += 1;
        st.hw_comp.reset(self.cfg.post_reset_hw_committed);
        if let HwReset::Cxl { mem_clr } = kind {
            let d = super::DEVICE_DVSEC;
            let s2 = DvsecStatus2::from_bits(st.hw_cfg.get16(d + off::STATUS2))
                .with_cxl_reset_complete(true);
            st.hw_cfg.put16(d + off::STATUS2, s2.into_bits());
            if mem_clr {
                st.mem_track.written();
                st.dpa
                    .clear(&self.mem, self.layout.dpa_file_off, self.layout.dpa_size)?;
            }
        }
        Ok(())
    }

    /// v2 prepare: deactivate the DPA region and zap its mappings.
    fn prepare(&self, st: &mut State) -> Result<(), Errno> {
        st.dpa.active = false;
        st.mem_track.written();
        st.dpa
            .zap(&self.mem, self.layout.dpa_file_off, self.layout.dpa_size)
    }

    /// v2 finish (reset series, runs after success and failure): memory space on,
    /// shadow refreshed from hardware with BASE preserved, region re-armed on success.
    fn finish(&self, st: &mut State, ok: bool) -> Result<(), Errno> {
        let cmd = st.hw_cfg.get16(COMMAND);
        st.hw_cfg.put16(COMMAND, cmd | COMMAND_MEMORY);
        if let Some(CxlState::V2 { comp, .. }) = &mut st.cxl {
            let n = (comp.hdm.decoders.len() as u32).min(BASE_SAVE_LIMIT);
            let saved: Vec<(u32, u32)> = (0..n)
                .map(|i| {
                    (
                        comp.hdm.get(i, DecoderReg::BaseLo),
                        comp.hdm.get(i, DecoderReg::BaseHi),
                    )
                })
                .collect();
            comp.refresh(&st.hw_comp.hdm);
            for (i, (lo, hi)) in saved.into_iter().enumerate() {
                comp.hdm.set(i as u32, DecoderReg::BaseLo, lo);
                comp.hdm.set(i as u32, DecoderReg::BaseHi, hi);
            }
        }
        if ok { self.rearm_dpa(st) } else { Ok(()) }
    }

    /// Recomputes `region_active` (v2: precommitted && decoder 0 COMMITTED in the
    /// shadow) and zaps or restores the DPA pages to match.
    pub(super) fn rearm_dpa(&self, st: &mut State) -> Result<(), Errno> {
        let (base, size) = (self.layout.dpa_file_off, self.layout.dpa_size);
        let active = match &st.cxl {
            Some(CxlState::V2 { comp, .. }) => {
                self.cfg.firmware_committed && comp.hdm.ctrl(0).committed()
            }
            Some(CxlState::V4 { .. }) => Self::v4_dpa_allowed(st),
            _ => true,
        };
        st.dpa.active = active;
        st.mem_track.written();
        if active {
            st.dpa.restore(&self.mem, base, size)
        } else {
            st.dpa.zap(&self.mem, base, size)
        }
    }
}
