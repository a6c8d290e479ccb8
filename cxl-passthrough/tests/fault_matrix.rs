//! The fault matrix: for every fault kind the simulator offers, on v2, v3 and v4, through
//! the simulator backend and the kernel backend, the fault is injected right before the
//! N-th backend call of each phase (probe, lock, topology plan, map, overlay, VFIO
//! reset, guest FLR) for every N that phase makes. After the fault is cleared the same
//! device must recover: the phase succeeds when run again, decoder 0 is committed and
//! locked at the window with decoding enabled, device memory holds what the host wrote,
//! and a later reset works. v4 wipes device memory at every reset (a CXL reset): there
//! the memory must read zero after each successful reset, and the host writes it again. Nothing panics, and open fds return to their baseline.
//!
//! One test in its own binary, so no other test changes the fd count meanwhile.
#![allow(clippy::unwrap_used)]

mod runtime_common;

use std::error::Error;
use std::sync::Arc;

use cxl_passthrough::backend::sim::{CapChainFault, Fault, InfoTarget, OffsetLayout, Op};
use cxl_passthrough::backend::{Backend, ResetKind};
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::runtime::topology::plan_device_topology;
use cxl_passthrough::runtime::{CxlDevice, DeviceDesc, DeviceState, NoHooks};
use cxl_passthrough::uapi::RevisionChoice;
use cxl_passthrough::uapi::UapiRevision;
use runtime_common::armed::Armed;
use runtime_common::*;
use vm_memory::VolatileMemory;

const SEED: &[u8] = b"fault-matrix-seed";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Probe,
    Topology,
    Lock,
    Map,
    Overlay,
    VfioReset,
    GuestFlr,
}

const PHASES: [Phase; 7] = [
    Phase::Probe,
    Phase::Lock,
    Phase::Topology,
    Phase::Map,
    Phase::Overlay,
    Phase::VfioReset,
    Phase::GuestFlr,
];

/// Every fault kind the simulator offers (transient and until-cleared variants).
fn faults() -> Vec<Fault> {
    let mut v = vec![
        Fault::Eio {
            op: Op::Any,
            count: Some(1),
        },
        Fault::Eio {
            op: Op::Any,
            count: None,
        },
        Fault::Errno {
            op: Op::Any,
            errno: libc::EINTR,
            count: Some(1),
        },
        Fault::Errno {
            op: Op::Any,
            errno: libc::EBUSY,
            count: None,
        },
        Fault::ResetFails,
        Fault::ShortRead,
        Fault::ShortWrite,
        Fault::NoCxlCap,
        Fault::RegionSize { index: 7, size: 64 },
        Fault::RegionSize { index: 9, size: 0 },
    ];
    for kind in [
        CapChainFault::Loop,
        CapChainFault::NextOutOfBounds,
        CapChainFault::Truncated,
        CapChainFault::BogusCxlCapSize,
    ] {
        for target in [InfoTarget::DeviceInfo, InfoTarget::Region(2)] {
            v.push(Fault::MalformedCapChain { target, kind });
        }
    }
    v
}

/// The error and its sources, joined as the CLI prints them.
fn chain(e: &(dyn Error + 'static)) -> String {
    cxl_passthrough::errors::Chain(e).to_string()
}

/// One device under test: the simulator, the counting wrapper, and what the phases built.
struct Rig {
    rev: UapiRevision,
    sim: Arc<cxl_passthrough::backend::sim::SimDevice>,
    armed: Arc<Armed>,
    desc: Option<DeviceDesc>,
    dev: Option<CxlDevice>,
    maps: Vec<vm_memory::MmapRegion>,
}

impl Rig {
    fn new(rev: UapiRevision, kernel: bool) -> Self {
        let sim = sim(rev, BAR_LAYOUTS[1], OffsetLayout::Kernel);
        sim.dpa_host_write(0, SEED).unwrap();
        let inner: Arc<dyn Backend> = if kernel {
            kernel_over_sim(sim.clone())
        } else {
            sim.clone()
        };
        let armed = Armed::new(sim.clone(), inner);
        Self {
            rev,
            sim,
            armed,
            desc: None,
            dev: None,
            maps: vec![],
        }
    }

    fn dev(&self) -> &CxlDevice {
        self.dev.as_ref().unwrap()
    }

    /// Runs `phase` once; errors are returned as text (the phase may legitimately fail
    /// while a fault is active).
    fn run(&mut self, phase: Phase) -> Result<(), String> {
        self.run_phase(phase)?;
        if self.rev == UapiRevision::V4 && matches!(phase, Phase::VfioReset | Phase::GuestFlr) {
            // v4's CXL reset always clears device memory; the host fills it again.
            let mut got = [0xAAu8; SEED.len()];
            self.sim.dpa_host_read(0, &mut got).unwrap();
            assert_eq!(got, [0u8; SEED.len()], "v4 {phase:?}: memory not wiped");
            self.sim.dpa_host_write(0, SEED).unwrap();
        }
        Ok(())
    }

    fn run_phase(&mut self, phase: Phase) -> Result<(), String> {
        match phase {
            Phase::Probe => {
                let desc = probe(self.armed.as_ref(), RevisionChoice::Auto, PAGE)
                    .map_err(|e| chain(&e))?;
                let dev = CxlDevice::new(self.armed.clone(), desc.clone(), window(1 << 32), PAGE)
                    .map_err(|e| chain(&e))?;
                self.desc = Some(desc);
                self.dev = Some(dev);
                Ok(())
            }
            Phase::Lock => self.dev().boot().map(drop).map_err(|e| chain(&e)),
            Phase::Topology => plan_device_topology(self.dev(), 1, &[])
                .map(drop)
                .map_err(|e| chain(&e)),
            Phase::Map => {
                let dpa = self.dev().map_dpa().map_err(|e| chain(&e))?;
                let sparse = self.dev().map_sparse().map_err(|e| chain(&e))?;
                self.maps = std::iter::once(dpa)
                    .chain(sparse.into_iter().map(|(_, m)| m))
                    .collect();
                Ok(())
            }
            Phase::Overlay => {
                // A guest driver's first looks: capability header, HDM capability and
                // Global Control, decoder 0, then writes it is not allowed to make.
                let ov = self.dev().overlay();
                for off in [0x1000u64, 0x1200, 0x1204, 0x1210, 0x1214, 0x1220] {
                    let mut b = [0u8; 4];
                    ov.read(off, &mut b);
                }
                ov.write(0x1220, &0u32.to_le_bytes());
                ov.write(0x1204, &0u32.to_le_bytes());
                Ok(())
            }
            Phase::VfioReset => self
                .dev()
                .reset(ResetKind::Device, &mut NoHooks)
                .map(drop)
                .map_err(|e| chain(&e)),
            Phase::GuestFlr => {
                let desc = self.desc.as_ref().unwrap();
                let devctl = u64::from(desc.pcie_cap.unwrap()) + 8;
                let cfg = desc.config.file_offset;
                let mut cur = [0u8; 2];
                self.armed
                    .read(cfg, devctl, &mut cur)
                    .map_err(|e| chain(&e))?;
                let flr = (u16::from_le_bytes(cur) | 1 << 15).to_le_bytes();
                self.armed.write(cfg, devctl, &flr).map_err(|e| chain(&e))?;
                self.dev()
                    .relock_after_guest_reset(&mut NoHooks)
                    .map(drop)
                    .map_err(|e| chain(&e))
            }
        }
    }

    /// What a guest and the VMM must see on a working device.
    fn check_working(&self, what: &str) {
        if std::env::var_os("FAULT_MATRIX_TRACE").is_some() {
            eprintln!("check: {what}");
        }
        let dev = self.dev();
        let d = dev
            .decoder0()
            .unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
        assert!(
            d.committed && d.locked && d.base == WINDOW_BASE && d.hdm_enabled,
            "{what}: {d:?}"
        );
        assert!(
            matches!(dev.current_state(), DeviceState::Locked(_)),
            "{what}: {:?}",
            dev.current_state()
        );
        // The guest's view through the overlay.
        let mut b = [0u8; 4];
        dev.overlay().read(0x1220, &mut b);
        assert_eq!(u32::from_le_bytes(b), d.ctrl, "{what}: overlay CTRL");
        // Device memory through the kernel first (an inactive v2 region answers EIO
        // there, where a mapping would SIGBUS this test), then through a fresh mapping.
        let desc = self.desc.as_ref().unwrap();
        let mut got = [0u8; SEED.len()];
        let n = dev
            .backend()
            .read(desc.dpa.file_offset, 0, &mut got)
            .unwrap_or_else(|e| panic!("{what}: device memory not readable: {}", chain(&e)));
        assert_eq!(
            (n, &got[..]),
            (SEED.len(), SEED),
            "{what}: device memory (pread)"
        );
        // Device memory through a fresh mapping.
        let map = dev
            .map_dpa()
            .unwrap_or_else(|e| panic!("{what}: {}", chain(&e)));
        let mut got = [0u8; SEED.len()];
        map.as_volatile_slice()
            .offset(0)
            .unwrap()
            .copy_to(&mut got[..]);
        assert_eq!(&got, SEED, "{what}: device memory");
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Brings a rig up to (not including) `phase`, fault-free.
fn rig_before(rev: UapiRevision, kernel: bool, phase: Phase) -> Rig {
    let mut rig = Rig::new(rev, kernel);
    for p in PHASES.iter().take_while(|p| **p != phase) {
        rig.run(*p)
            .unwrap_or_else(|e| panic!("{rev:?} setup {p:?}: {e}"));
    }
    rig
}

#[test]
fn every_fault_at_every_call_of_every_phase_is_recovered() {
    // Warm up lazily initialised state before taking the fd baseline.
    drop(rig_before(UapiRevision::V3, true, Phase::GuestFlr));
    let fds = open_fds();
    let faults = faults();
    let mut cases = 0u32;
    let mut failed_first = 0u32;
    for rev in REVISIONS {
        for kernel in [false, true] {
            for phase in PHASES {
                // How many backend calls the phase makes without faults.
                let mut clean = rig_before(rev, kernel, phase);
                let start = clean.armed.calls();
                clean.run(phase).unwrap();
                let calls = clean.armed.calls() - start;
                drop(clean);
                for n in 0..calls {
                    for &fault in &faults {
                        let what = format!(
                            "{rev:?} {} {phase:?} call {n}/{calls} {fault:?}",
                            if kernel { "kernel" } else { "sim" }
                        );
                        let mut rig = rig_before(rev, kernel, phase);
                        rig.armed.arm_in(n, fault);
                        let first = rig.run(phase);
                        rig.armed.clear();
                        cases += 1;
                        if first.is_err() {
                            failed_first += 1;
                        }
                        // Recovery: a phase that failed is run again on the same objects;
                        // a failed reset left the device fenced, and the next reset is
                        // how a VMM recovers it.
                        if let Err(e) = &first {
                            assert!(!e.is_empty(), "{what}: empty error");
                            rig.run(phase)
                                .unwrap_or_else(|e2| panic!("{what}: retry: {e2} (first: {e})"));
                        }
                        // The rest of the lifecycle, fault-free.
                        for p in PHASES.iter().skip_while(|p| **p != phase).skip(1) {
                            rig.run(*p)
                                .unwrap_or_else(|e| panic!("{what}: later {p:?}: {e}"));
                        }
                        rig.check_working(&what);
                        rig.run(Phase::VfioReset)
                            .unwrap_or_else(|e| panic!("{what}: final reset: {e}"));
                        rig.check_working(&what);
                    }
                }
            }
        }
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    eprintln!("fault matrix: {cases} cases, {failed_first} failed first and recovered");
    assert!(
        failed_first > cases / 10,
        "faults hardly ever hit: {failed_first}/{cases}"
    );
}
