//! The KVM harness with stand-in devices: an anonymous mapping as the "window", fixed
//! registers as the "decoder", the no-op device. Skips loudly without /dev/kvm or off x86-64.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should abort the test

use std::sync::Arc;

use super::kvm_gate::kvm_or_skip;
use crate::demo::guest::{Step, assemble};
use crate::demo::harness::{Harness, MemoryRegion, MmioRegion, PORT_IO, UNMAPPED};
use crate::demo::layout::{BAR_GPA, NOOP_GPA, NOOP_SIZE, RAM_BUFFER_GPA, WINDOWS_GPA, ram_size};
use crate::demo::memcheck::{verify_all, write_sparse};
use crate::demo::stubs::{FixedRegs, NoopDevice};
use cxl_passthrough::regs::hdm::{DecoderCtrl, DecoderReg};
use vm_memory::MmapRegion;

const WIN: u64 = 256 << 20;

fn window() -> Arc<MmapRegion> {
    Arc::new(MmapRegion::new(WIN as usize).unwrap())
}

fn decoder(base: u64, size: u64, ctrl: DecoderCtrl) -> FixedRegs {
    FixedRegs::new([
        (DecoderReg::BaseLo.at(0), base as u32),
        (DecoderReg::BaseHi.at(0), (base >> 32) as u32),
        (DecoderReg::SizeLo.at(0), size as u32),
        (DecoderReg::SizeHi.at(0), (size >> 32) as u32),
        (DecoderReg::Ctrl.at(0), ctrl.into_bits()),
    ])
}

/// A harness with `ram` bytes of RAM, `win` as the window at its GPA and decoder 0
/// (at the window, `ctrl`) trapped at the BAR.
fn harness_with_window(ram: u64, win: &Arc<MmapRegion>, ctrl: DecoderCtrl) -> Harness {
    let mut h = Harness::new(ram).unwrap();
    h.add_memory(MemoryRegion {
        label: "window".into(),
        gpa: WINDOWS_GPA,
        mapping: win.clone(),
    })
    .unwrap();
    h.add_mmio(MmioRegion {
        label: "decoder".into(),
        gpa: BAR_GPA,
        size: 0x1000,
        device: Arc::new(decoder(WINDOWS_GPA, WIN, ctrl)),
    })
    .unwrap();
    h
}

#[test]
fn guest_sees_window_decoder_and_trapped_devices() {
    if !kvm_or_skip("guest_sees_window_decoder_and_trapped_devices") {
        return;
    }
    let win = window();
    let host_seed = 0x1111_2222_3333_4444;
    assert_eq!(write_sparse(&win, WIN, 4096, host_seed), WIN / 4096);
    let locked = DecoderCtrl::new()
        .with_committed(true)
        .with_lock_on_commit(true);
    let mut h = harness_with_window(ram_size(16 << 20), &win, locked);
    h.add_mmio(MmioRegion {
        label: "noop".into(),
        gpa: NOOP_GPA,
        size: NOOP_SIZE,
        device: Arc::new(NoopDevice),
    })
    .unwrap();
    let steps = vec![
        Step::CheckDecoder {
            regs_gpa: BAR_GPA + DecoderReg::BaseLo.at(0),
            base: WINDOWS_GPA,
            size: WIN,
        },
        Step::VerifyPattern {
            gpa: WINDOWS_GPA,
            len: WIN,
            stride: 4096,
            seed: host_seed,
        },
        Step::Checkpoint(9),
        Step::Bandwidth {
            a: RAM_BUFFER_GPA,
            b: WINDOWS_GPA,
            len: 8 << 20,
            passes: 3,
        },
        Step::FillPattern {
            gpa: WINDOWS_GPA,
            len: WIN,
            seed: 0xABCD,
        },
        Step::TrapCost {
            a: NOOP_GPA,
            b: BAR_GPA + DecoderReg::Ctrl.at(0),
            count: 50,
            rounds: 2,
        },
        Step::Touch {
            gpa: RAM_BUFFER_GPA,
            value: Some(77),
        },
    ];
    let program = assemble(&steps).unwrap();
    let mut seen = vec![];
    let out = h
        .run(&program, &mut |id, ctl| {
            seen.push((id, ctl.is_mapped("window")));
            Ok(())
        })
        .unwrap();
    eprintln!("{out:#?}");
    assert!(out.finished);
    assert!(out.records.iter().all(|r| r.done));
    assert_eq!(seen, vec![(9, true)]);
    let r = &out.records;
    assert_eq!(
        r[0].values[..4],
        [WINDOWS_GPA, WIN, u64::from(locked.into_bits()), 1]
    );
    assert_eq!(r[1].values[..2], [0, 0], "host pattern intact");
    let bw = r[3].values;
    assert!(
        bw[..4].iter().all(|c| *c > 0 && *c < u64::MAX),
        "every pass timed: {bw:?}"
    );
    assert_eq!(bw[4], 0, "the read sweeps add up zeros written just before");
    assert_eq!(r[5].values[2..4], [0, u64::from(locked.into_bits())]);
    assert!(r[5].values[..2].iter().all(|c| *c > 0 && *c < u64::MAX));
    assert_eq!(
        r[6].values[0], 0,
        "RAM buffer was zeroed by the bandwidth step"
    );
    let c = verify_all(&win, WIN, 0xABCD);
    assert!(c.ok(), "guest pattern: {c:?}");
    assert_eq!(out.exits["window"], 0);
    assert_eq!(out.exits["ram"], 0);
    assert_eq!(out.exits["decoder"], 5 + 100);
    assert_eq!(out.exits["noop"], 100);
    assert_eq!(out.exits[UNMAPPED], 0);
    assert_eq!(out.exits[PORT_IO], 2);
}

#[test]
fn guest_reports_an_unlocked_decoder_and_a_corrupted_pattern() {
    if !kvm_or_skip("guest_reports_an_unlocked_decoder_and_a_corrupted_pattern") {
        return;
    }
    let win = window();
    let host_seed = 0x5555;
    write_sparse(&win, WIN, 4096, host_seed);
    assert!(crate::demo::memcheck::write_u64(&win, 0x3000, 0));
    // Committed but not locked, and at the wrong base.
    let unlocked = DecoderCtrl::new().with_committed(true);
    let mut h = harness_with_window(ram_size(1 << 20), &win, unlocked);
    let wrong_base = Arc::new(decoder(
        WINDOWS_GPA + WIN,
        WIN,
        DecoderCtrl::new()
            .with_committed(true)
            .with_lock_on_commit(true),
    ));
    h.add_mmio(MmioRegion {
        label: "decoder2".into(),
        gpa: BAR_GPA + 0x1000,
        size: 0x1000,
        device: wrong_base,
    })
    .unwrap();
    let steps = vec![
        Step::CheckDecoder {
            regs_gpa: BAR_GPA + DecoderReg::BaseLo.at(0),
            base: WINDOWS_GPA,
            size: WIN,
        },
        Step::CheckDecoder {
            regs_gpa: BAR_GPA + 0x1000 + DecoderReg::BaseLo.at(0),
            base: WINDOWS_GPA,
            size: WIN,
        },
        Step::VerifyPattern {
            gpa: WINDOWS_GPA,
            len: WIN,
            stride: 4096,
            seed: host_seed,
        },
        // An access nobody handles: all-ones, counted as unmapped.
        Step::Touch {
            gpa: 0xF000_0000,
            value: Some(1),
        },
    ];
    let out = h
        .run(&assemble(&steps).unwrap(), &mut |_, _| Ok(()))
        .unwrap();
    assert!(out.finished);
    let r = &out.records;
    assert_eq!(r[0].values[3], 0, "LOCK clear must fail the guest's check");
    assert_eq!(r[1].values[0], WINDOWS_GPA + WIN);
    assert_eq!(r[1].values[3], 0, "wrong base must fail the guest's check");
    assert_eq!(r[2].values[..2], [1, 0x3000 + 1], "one mismatch, at 0x3000");
    assert_eq!(r[3].values[0], u64::MAX);
    assert_eq!(out.exits[UNMAPPED], 2, "the read and the write");
}
