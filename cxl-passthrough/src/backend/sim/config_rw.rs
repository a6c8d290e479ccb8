//! The config region (index 7): natural-width chunks, DVSEC virtualization per
//! revision, everything else to the hardware image with its PCI semantics.

use super::config::Errno;
use super::layout::CONFIG_SIZE;
use super::rw::Access;
use super::{CxlState, SimDevice, State};

impl SimDevice {
    pub(super) fn config_rw(
        &self,
        st: &mut State,
        pos: u64,
        acc: Access<'_>,
    ) -> Result<usize, Errno> {
        if pos >= CONFIG_SIZE {
            return Err(Errno::EINVAL);
        }
        let len = match &acc {
            Access::Read(b) => b.len(),
            Access::Write(b) => b.len(),
        };
        let n = (len as u64).min(CONFIG_SIZE - pos) as usize;
        let body_start = match &st.cxl {
            Some(CxlState::V3 { dvsec, .. }) => Some(u64::from(dvsec.body_start())),
            _ => None,
        };
        let mut done = 0usize;
        let mut acc = acc;
        while done < n {
            let p = pos + done as u64;
            let left = n - done;
            let mut chunk = if p.is_multiple_of(4) && left >= 4 {
                4
            } else if p.is_multiple_of(2) && left >= 2 {
                2
            } else {
                1
            };
            if let Some(bs) = body_start
                && p < bs
                && p + chunk as u64 > bs
            {
                chunk = (bs - p) as usize;
            }
            let o = p as u16;
            match &mut acc {
                Access::Read(b) => self.config_read_chunk(st, o, &mut b[done..done + chunk]),
                Access::Write(b) => self.config_write_chunk(st, o, &b[done..done + chunk])?,
            }
            done += chunk;
        }
        Ok(n)
    }

    fn config_read_chunk(&self, st: &State, o: u16, buf: &mut [u8]) {
        match &st.cxl {
            Some(CxlState::V2 { dvsec, .. }) if dvsec.contains(o) => dvsec.read(&st.hw_cfg, o, buf),
            Some(CxlState::V3 { dvsec, .. }) if dvsec.contains(o) => dvsec.read(o, buf),
            Some(CxlState::V4 { dvsec, .. }) if dvsec.contains(o) => dvsec.read(o, buf),
            _ => st.hw_cfg.read(o, buf),
        }
    }

    fn config_write_chunk(&self, st: &mut State, o: u16, data: &[u8]) -> Result<(), Errno> {
        let reset_capable = self.cfg.cxl_reset_capable;
        match &mut st.cxl {
            Some(CxlState::V2 { dvsec, .. }) if dvsec.contains(o) => {
                let effect = dvsec.write(&mut st.hw_cfg, o, data, reset_capable);
                if effect.cxl_reset {
                    self.guest_cxl_reset(st)?;
                }
            }
            Some(CxlState::V3 { dvsec, .. }) if dvsec.contains(o) => dvsec.write(o, data),
            Some(CxlState::V4 { dvsec, .. }) if dvsec.contains(o) => {
                self.v4_dvsec_write(st, o, data)?;
            }
            _ => {
                if st.hw_cfg.write(o, data) {
                    self.guest_flr(st)?;
                }
                if matches!(st.cxl, Some(CxlState::V4 { .. })) {
                    // Memory Space on/off zaps or re-arms the HDM mappings.
                    self.rearm_dpa(st)?;
                }
            }
        }
        Ok(())
    }
}
