//! Fault injection and operation counters.

use super::config::Errno;

/// An operation a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Every operation below.
    Any,
    /// `VFIO_DEVICE_GET_INFO`.
    DeviceInfo,
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    RegionInfo,
    /// pread on any region.
    Read,
    /// pwrite on any region.
    Write,
    /// `VFIO_DEVICE_RESET`.
    Reset,
    /// mmap through [`super::SimDevice::mmap`] or `Backend::mmap_source`.
    Mmap,
}

/// Which info answer a capability-chain fault corrupts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoTarget {
    /// `VFIO_DEVICE_GET_INFO` (the CXL capability).
    DeviceInfo,
    /// `VFIO_DEVICE_GET_REGION_INFO` for this index (its first capability).
    Region(u32),
}

/// How a capability chain is corrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapChainFault {
    /// The first capability's `next` points at itself.
    Loop,
    /// The first capability's `next` points past the end of the answer.
    NextOutOfBounds,
    /// The answer ends in the middle of the first capability (argsz covers only its
    /// header and 8 bytes of body); for a sparse cap, `nr_areas` claims more areas than
    /// are present.
    Truncated,
    /// The CXL capability is 40 bytes long (neither the v2 32 nor the v3 48 layout).
    BogusCxlCapSize,
}

/// A fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `op` fails with `EIO` `count` times (`None`: until cleared).
    Eio {
        /// Targeted operation.
        op: Op,
        /// How many times.
        count: Option<u32>,
    },
    /// `op` fails with `errno` `count` times (`None`: until cleared).
    Errno {
        /// Targeted operation.
        op: Op,
        /// The errno.
        errno: i32,
        /// How many times.
        count: Option<u32>,
    },
    /// The next hardware reset (ioctl, guest FLR, guest CXL reset) fails; the driver runs
    /// its failure path (v2: region stays inactive).
    ResetFails,
    /// The next successful pread reports (and fills) only half of the bytes it read,
    /// rounded down.
    ShortRead,
    /// The next successful pwrite takes full effect but reports only half of the bytes,
    /// rounded down.
    ShortWrite,
    /// Corrupts a capability chain until cleared.
    MalformedCapChain {
        /// Which answer.
        target: InfoTarget,
        /// How.
        kind: CapChainFault,
    },
    /// Region info for `index` reports `size` until cleared (the region itself keeps
    /// its real size).
    RegionSize {
        /// Region index.
        index: u32,
        /// Reported size.
        size: u64,
    },
    /// Device info sets the CXL flag but carries no CXL capability.
    NoCxlCap,
}

/// Counts of operations seen by the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `VFIO_DEVICE_GET_INFO` calls.
    pub device_info: u64,
    /// `VFIO_DEVICE_GET_REGION_INFO` calls.
    pub region_info: u64,
    /// preads (all regions).
    pub reads: u64,
    /// pwrites (all regions).
    pub writes: u64,
    /// COMP_REGS preads.
    pub comp_regs_reads: u64,
    /// COMP_REGS pwrites.
    pub comp_regs_writes: u64,
    /// DPA preads.
    pub dpa_reads: u64,
    /// DPA pwrites.
    pub dpa_writes: u64,
    /// Config-space preads.
    pub config_reads: u64,
    /// Config-space pwrites.
    pub config_writes: u64,
    /// BAR preads and pwrites.
    pub bar_accesses: u64,
    /// Reset ioctls.
    pub resets: u64,
    /// Hardware resets actually performed (any trigger, including open and the guest).
    pub hw_resets: u64,
    /// Successful mmaps.
    pub mmaps: u64,
}

/// Active faults.
#[derive(Clone, Debug, Default)]
pub struct FaultSet {
    list: Vec<Fault>,
}

fn matches(target: Op, op: Op) -> bool {
    target == Op::Any || target == op
}

impl FaultSet {
    /// Adds a fault.
    pub fn add(&mut self, f: Fault) {
        self.list.push(f);
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Whether no fault is active (the hot path checks this first).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Consumes an errno fault for `op`, if any.
    pub fn errno_for(&mut self, op: Op) -> Option<Errno> {
        let i = self.list.iter().position(|f| match f {
            Fault::Eio { op: t, .. } | Fault::Errno { op: t, .. } => matches(*t, op),
            _ => false,
        })?;
        let (errno, count) = match &mut self.list[i] {
            Fault::Eio { count, .. } => (libc::EIO, count),
            Fault::Errno { errno, count, .. } => (*errno, count),
            _ => return None,
        };
        if let Some(c) = count {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.list.remove(i);
            }
        }
        Some(Errno(errno))
    }

    fn take(&mut self, want: Fault) -> bool {
        match self.list.iter().position(|f| *f == want) {
            Some(i) => {
                self.list.remove(i);
                true
            }
            None => false,
        }
    }

    /// Consumes a pending [`Fault::ResetFails`].
    pub fn take_reset_fail(&mut self) -> bool {
        self.take(Fault::ResetFails)
    }

    /// Consumes a pending [`Fault::ShortRead`].
    pub fn take_short_read(&mut self) -> bool {
        self.take(Fault::ShortRead)
    }

    /// Consumes a pending [`Fault::ShortWrite`].
    pub fn take_short_write(&mut self) -> bool {
        self.take(Fault::ShortWrite)
    }

    /// The chain corruption for `target`, if any.
    pub fn cap_chain(&self, target: InfoTarget) -> Option<CapChainFault> {
        self.list.iter().find_map(|f| match f {
            Fault::MalformedCapChain { target: t, kind } if *t == target => Some(*kind),
            _ => None,
        })
    }

    /// The size override for region `index`, if any.
    pub fn region_size(&self, index: u32) -> Option<u64> {
        self.list.iter().find_map(|f| match f {
            Fault::RegionSize { index: i, size } if *i == index => Some(*size),
            _ => None,
        })
    }

    /// Whether the CXL capability is suppressed.
    pub fn no_cxl_cap(&self) -> bool {
        self.list.contains(&Fault::NoCxlCap)
    }
}
