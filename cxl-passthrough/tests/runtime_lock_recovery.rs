//! The boot-time lock and the re-lock after reset survive a transient fault at any
//! step: the error names the step, and once the fault is gone the same `CxlDevice`
//! boots, resets and re-locks, on v2, v3 and v4 (whose decoder view is the VMM's own:
//! its first device write is the Memory Space enable, not a COMP_REGS write).
#![allow(clippy::unwrap_used)]

mod chain_common;
mod runtime_common;

use std::error::Error;
use std::sync::Arc;

use cxl_passthrough::backend::ResetKind;
use cxl_passthrough::backend::sim::{Fault, OffsetLayout, Op, SimDevice};
use cxl_passthrough::runtime::{CxlDevice, DeviceError, DeviceState, HdmLockError, NoHooks};
use cxl_passthrough::uapi::UapiRevision;
use runtime_common::armed::Armed;
use runtime_common::*;

/// The error and its sources, joined as the CLI prints them.
fn chain(e: &(dyn Error + 'static)) -> String {
    cxl_passthrough::errors::Chain(e).to_string()
}

fn setup(rev: UapiRevision) -> (Arc<SimDevice>, Arc<Armed>, CxlDevice) {
    let s = sim(rev, BAR_LAYOUTS[2], OffsetLayout::Kernel);
    let armed = Armed::new(s.clone(), s.clone());
    let (dev, _) = device(armed.clone());
    (s, armed, dev)
}

/// Decoder 0 as the guest reads it through the overlay: locked at the window.
fn assert_locked(dev: &CxlDevice, what: &str) {
    let d = dev.decoder0().unwrap();
    assert!(d.committed && d.locked, "{what}: {d:?}");
    assert_eq!(d.base, WINDOW_BASE, "{what}");
    assert!(d.hdm_enabled, "{what}");
    assert!(
        matches!(dev.current_state(), DeviceState::Locked(_)),
        "{what}"
    );
}

/// The reproducer: a short write (or one EIO on write) during `boot()` on v3,
/// the fault cleared, `boot()` again on the same device, then `reset()`. Before the fix
/// the retry failed with "HDM decoder 0 is not firmware-committed (CTRL 0x00000000)"
/// (the first write had decommitted the decoder in the kernel's shadow).
#[test]
fn v3_boot_retry_after_short_write_and_eio() {
    for fault in [
        Fault::ShortWrite,
        Fault::Eio {
            op: Op::Write,
            count: Some(1),
        },
    ] {
        for rev in REVISIONS {
            let (s, _, dev) = setup(rev);
            s.inject(fault);
            let e = dev.boot().unwrap_err();
            assert!(
                matches!(e, DeviceError::Lock(HdmLockError::Step { .. }))
                    || (rev == UapiRevision::V4 && matches!(e, DeviceError::MemorySpace(_))),
                "{rev:?} {fault:?}: {}",
                chain(&e)
            );
            chain_common::assert_chain_once(&e);
            s.clear_faults();
            dev.boot()
                .unwrap_or_else(|e| panic!("{rev:?} {fault:?}: retry: {}", chain(&e)));
            assert_locked(&dev, "after retry");
            dev.reset(ResetKind::Device, &mut NoHooks).unwrap();
            assert_locked(&dev, "after reset");
        }
    }
}

/// A fault that outlasts the attempt (so the rollback fails too) at every call of
/// `boot()`: after clearing it, the same device boots; then the same for `reset()`.
#[test]
fn persistent_fault_at_every_lock_step_is_recoverable() {
    for rev in REVISIONS {
        // How many backend calls a clean boot makes.
        let (_, armed, dev) = setup(rev);
        let start = armed.calls();
        dev.boot().unwrap();
        let boot_calls = armed.calls() - start;
        assert!(boot_calls >= 10, "{rev:?}: {boot_calls}");
        for k in 0..boot_calls {
            for fault in [
                Fault::Eio {
                    op: Op::Any,
                    count: None,
                },
                Fault::Errno {
                    op: Op::Write,
                    errno: libc::EBUSY,
                    count: None,
                },
            ] {
                let what = format!("{rev:?} boot call {k} {fault:?}");
                let (_, armed, dev) = setup(rev);
                armed.arm_in(k, fault);
                let first = dev.boot();
                armed.clear();
                if let Err(e) = &first {
                    chain_common::assert_chain_once(e);
                    let msg = chain(e);
                    assert!(
                        msg.contains("failed at step")
                            || msg.contains("Mem_Enable")
                            || msg.contains("Memory Space Enable")
                            || msg.contains("live HDM decoder")
                            || msg.contains("device memory is not accessible"),
                        "{what}: error does not name the step: {msg}"
                    );
                }
                dev.boot()
                    .unwrap_or_else(|e| panic!("{what}: retry: {}", chain(&e)));
                assert_locked(&dev, &what);
                dev.reset(ResetKind::Device, &mut NoHooks)
                    .unwrap_or_else(|e| panic!("{what}: reset: {}", chain(&e)));
                assert_locked(&dev, &what);
            }
        }
        // The same during the re-lock of a VFIO reset: fenced, then a second reset recovers.
        let (_, armed, dev) = setup(rev);
        dev.boot().unwrap();
        let start = armed.calls();
        dev.reset(ResetKind::Device, &mut NoHooks).unwrap();
        let reset_calls = armed.calls() - start;
        for k in 0..reset_calls {
            let what = format!("{rev:?} reset call {k}");
            let (_, armed, dev) = setup(rev);
            dev.boot().unwrap();
            armed.arm_in(
                k,
                Fault::Eio {
                    op: Op::Any,
                    count: None,
                },
            );
            let first = dev.reset(ResetKind::Device, &mut NoHooks);
            armed.clear();
            if first.is_err() {
                assert!(
                    matches!(dev.current_state(), DeviceState::Fenced(_)),
                    "{what}"
                );
            }
            dev.reset(ResetKind::Device, &mut NoHooks)
                .unwrap_or_else(|e| panic!("{what}: second reset: {}", chain(&e)));
            assert_locked(&dev, &what);
        }
    }
}

/// After a failed attempt whose rollback worked, the kernel's shadow is as firmware
/// left it: a new process (reopen, new probe, new `CxlDevice`) on the same binding
/// boots. Before the rollback existed, a v3 shadow left decommitted by a failure at any
/// write after the first refused every later process.
#[test]
fn rollback_leaves_the_shadow_bootable_for_a_new_process() {
    for rev in REVISIONS {
        let (_, armed, dev) = setup(rev);
        let start = armed.calls();
        dev.boot().unwrap();
        let boot_calls = armed.calls() - start;
        for k in 0..boot_calls {
            let what = format!("{rev:?} EINTR at boot call {k}");
            let (s, armed, dev) = setup(rev);
            armed.arm_in(
                k,
                Fault::Errno {
                    op: Op::Any,
                    errno: libc::EINTR,
                    count: Some(1),
                },
            );
            let _ = dev.boot();
            drop(dev);
            armed.clear();
            // A second process: close and reopen the fd (v3 keeps its shadow), probe again.
            s.close();
            s.open().unwrap();
            let (dev2, _) = device(s.clone());
            dev2.boot()
                .unwrap_or_else(|e| panic!("{what}: new process: {}", chain(&e)));
            assert_locked(&dev2, &what);
        }
    }
}

/// A v2 reset after which hardware really did not re-commit decoder 0 is still
/// refused: the memory of an interrupted attempt ends when the kernel refreshes its
/// view from hardware.
#[test]
fn v2_hardware_uncommitted_after_reset_is_not_mistaken_for_our_leftover() {
    use cxl_passthrough::backend::sim::SimConfig;
    let cfg = SimConfig {
        post_reset_hw_committed: false,
        reset_on_open: false,
        ..SimConfig::new(UapiRevision::V2)
    };
    let s = Arc::new(SimDevice::new(cfg).unwrap());
    let (dev, _) = device(s.clone());
    // Leave an interrupted attempt behind (writes fail until cleared, rollback too).
    s.inject(Fault::Eio {
        op: Op::Write,
        count: None,
    });
    assert!(dev.boot().is_err());
    s.clear_faults();
    let e = dev.reset(ResetKind::Device, &mut NoHooks).unwrap_err();
    assert!(
        chain(&e).contains("not firmware-committed"),
        "{}",
        chain(&e)
    );
    assert!(matches!(dev.current_state(), DeviceState::Fenced(_)));
}
