//! Snapshot and restore of a whole simulated device (register state, driver state and
//! the contents of the backing memfd), so that a test or fuzz target can build a device
//! once and return it to a known state cheaply between cases.

use std::sync::atomic::{AtomicU64, Ordering};

use super::config::Errno;
use super::{SimDevice, State};

/// Source of device ids and snapshot tokens (unique per process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh process-unique id.
pub(super) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What the simulator knows about its memfd's contents, to skip rewriting it on a restore
/// when nothing could have changed it. Not part of a snapshot: it describes the file.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MemTrack {
    /// Bumped by every simulator operation that may change the memfd (pwrite to a BAR
    /// or DPA, host DPA writes, zap/restore/clear of the DPA).
    epoch: u64,
    /// `(snapshot token, epoch)`: at that epoch the file held exactly that snapshot's
    /// contents.
    matches: Option<(u64, u64)>,
}

impl MemTrack {
    /// Records a (possible) change of the memfd contents.
    pub(super) fn written(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }
}

/// A saved copy of one [`SimDevice`]'s complete state, taken by [`SimDevice::snapshot`]
/// and put back by [`SimDevice::restore`]: hardware registers (config space, component
/// block, HDM decoders), the driver's shadows (COMP_REGS, DVSEC), the open flag, the DPA
/// `region_active` gate and zap state, injected faults, the operation counters, and the
/// populated contents and length of the backing memfd (BAR memory and device memory).
#[derive(Clone, Debug)]
pub struct SimSnapshot {
    device: u64,
    token: u64,
    state: State,
    mem_len: u64,
    /// Populated extents of the memfd: `(file offset, bytes)`.
    mem: Vec<(u64, Vec<u8>)>,
}

impl SimSnapshot {
    /// Bytes of memfd contents the snapshot holds (the populated pages of the file).
    pub fn mem_bytes(&self) -> usize {
        self.mem.iter().map(|(_, b)| b.len()).sum()
    }
}

impl SimDevice {
    /// Saves the device's complete state (see [`SimSnapshot`]). Costs a copy of the
    /// register state and of the memfd's populated pages (BAR marker pages and any device
    /// memory written so far).
    pub fn snapshot(&self) -> Result<SimSnapshot, Errno> {
        let mut st = self.lock();
        let mem_len = self.mem.len()?;
        let mut mem = Vec::new();
        for (o, len) in self.mem.data_extents(0, mem_len)? {
            let len = usize::try_from(len).map_err(|_| Errno::EIO)?;
            let mut b = vec![0u8; len];
            self.mem.read_full(&mut b, o)?;
            mem.push((o, b));
        }
        let token = next_id();
        st.mem_track.matches = Some((token, st.mem_track.epoch));
        Ok(SimSnapshot {
            device: self.id,
            token,
            state: st.clone(),
            mem_len,
            mem,
        })
    }

    /// Puts the device back exactly into the state saved by `snap`: afterwards every
    /// operation (ioctls, pread/pwrite, mmap contents, host inspection, [`Self::stats`])
    /// answers as it did when the snapshot was taken.
    ///
    /// Cheap when the memfd has not been written since the snapshot was taken or last
    /// restored (only the register state is copied, no system call): register and
    /// COMP_REGS/config accesses never touch the file. Otherwise (a BAR or DPA write, a
    /// DPA zap, or the device fd was handed out by [`Self::device_fd`], [`Self::mmap`] or
    /// `Backend::mmap_source`, after which writes through a mapping cannot be seen) the
    /// file is truncated and its saved contents written back, which also resets what
    /// existing mappings read.
    ///
    /// Fails with `EINVAL` for a snapshot of another device, or with the errno of a
    /// failed memfd operation (the device is then in an unspecified state; restore again).
    pub fn restore(&self, snap: &SimSnapshot) -> Result<(), Errno> {
        if snap.device != self.id {
            return Err(Errno::EINVAL);
        }
        let mut st = self.lock();
        let mut track = st.mem_track;
        let clean = !self.fd_shared.load(Ordering::Relaxed)
            && track.matches == Some((snap.token, track.epoch));
        st.clone_from(&snap.state);
        if clean {
            st.mem_track = track;
            return Ok(());
        }
        track.written();
        track.matches = None;
        st.mem_track = track;
        self.mem.set_len(0)?;
        self.mem.set_len(snap.mem_len)?;
        for (o, b) in &snap.mem {
            self.mem.write_full(b, *o)?;
        }
        st.mem_track.matches = Some((snap.token, st.mem_track.epoch));
        Ok(())
    }
}
