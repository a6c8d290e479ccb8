//! Benchmarks of the trapped path and of bring-up, reported as ratios.
//!
//! - overlay dispatch: a guest dword read of decoder 0 CTRL through the overlay vs the
//!   same COMP_REGS read issued directly on the backend (goal: ≤ 10 % overhead);
//! - bring-up: simulator + probe + plan + boot-time lock for 1 and for 16 devices
//!   (goal: ≤ 1 ms per device, linear).
//!
//! Besides criterion's own report, the run ends with a `ratio:` summary measured in the
//! same process (docs/performance.md).
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::sim::{SimConfig, SimDevice};
use cxl_passthrough::plan::WindowAllocator;
use cxl_passthrough::runtime::CxlDevice;
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::uapi::RevisionChoice;
use cxl_passthrough::uapi::UapiRevision;

const PAGE: u64 = 4096;

fn booted(rev: UapiRevision) -> (Arc<SimDevice>, CxlDevice) {
    let sim = Arc::new(SimDevice::new(SimConfig::new(rev)).unwrap());
    let desc = probe(sim.as_ref(), RevisionChoice::Auto, PAGE).unwrap();
    let w = WindowAllocator::new(0x40_0000_0000, 1 << 40)
        .unwrap()
        .allocate(desc.dpa.size)
        .unwrap();
    let dev = CxlDevice::new(sim.clone(), desc, w, PAGE).unwrap();
    dev.boot().unwrap();
    (sim, dev)
}

fn bring_up(n: usize) {
    let mut windows = WindowAllocator::new(0x40_0000_0000, 1 << 40).unwrap();
    let devs: Vec<_> = (0..n)
        .map(|i| {
            let rev = if i % 2 == 0 {
                UapiRevision::V2
            } else {
                UapiRevision::V3
            };
            let sim = Arc::new(SimDevice::new(SimConfig::new(rev)).unwrap());
            let desc = probe(sim.as_ref(), RevisionChoice::Auto, PAGE).unwrap();
            let w = windows.allocate(desc.dpa.size).unwrap();
            let dev = CxlDevice::new(sim, desc, w, PAGE).unwrap();
            dev.boot().unwrap();
            dev
        })
        .collect();
    black_box(devs);
}

struct Paths {
    /// The backend as the runtime holds it (dynamic dispatch), the fair baseline.
    sim: Arc<dyn Backend>,
    /// Held once, as a VMM's IoManager holds it.
    overlay: Arc<cxl_passthrough::runtime::Overlay>,
    _dev: CxlDevice,
    ctrl_block: u64,
    ctrl_region: u64,
    comp_file: u64,
}

fn paths(rev: UapiRevision) -> Paths {
    let (sim, dev) = booted(rev);
    let d = dev.desc().clone();
    let ctrl_block = d.hdm.block_offset + 0x20;
    Paths {
        sim: black_box(sim as Arc<dyn Backend>),
        ctrl_block,
        ctrl_region: ctrl_block - d.comp_regs_base_in_block,
        comp_file: d.comp_regs.file_offset,
        overlay: dev.overlay(),
        _dev: dev,
    }
}

fn overlay_read(p: &Paths) -> u32 {
    let mut b = [0u8; 4];
    p.overlay.read(black_box(p.ctrl_block), &mut b);
    u32::from_le_bytes(b)
}

fn direct_read(p: &Paths) -> u32 {
    let mut b = [0u8; 4];
    p.sim
        .read(p.comp_file, black_box(p.ctrl_region), &mut b)
        .unwrap();
    u32::from_le_bytes(b)
}

fn benches(c: &mut Criterion) {
    for rev in [UapiRevision::V2, UapiRevision::V3] {
        let p = paths(rev);
        let mut g = c.benchmark_group(format!("comp_regs_dword_{rev:?}"));
        g.bench_function("direct_backend", |b| b.iter(|| direct_read(&p)));
        g.bench_function("overlay", |b| b.iter(|| overlay_read(&p)));
        g.finish();
    }
    let mut g = c.benchmark_group("bring_up");
    g.sample_size(20);
    g.bench_function("1_device", |b| b.iter(|| bring_up(1)));
    g.bench_function("16_devices", |b| b.iter(|| bring_up(16)));
    g.finish();
}

/// Median of `rounds` timings of `iters` calls of `f`, per call.
fn per_call(rounds: usize, iters: u32, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters
        })
        .collect();
    v.sort();
    v[rounds / 2]
}

fn ratios() {
    println!("\nratio summary (same process, medians of 15 rounds):");
    for rev in [UapiRevision::V2, UapiRevision::V3] {
        let p = paths(rev);
        let direct = per_call(15, 200_000, || {
            black_box(direct_read(&p));
        });
        let overlay = per_call(15, 200_000, || {
            black_box(overlay_read(&p));
        });
        let r = overlay.as_secs_f64() / direct.as_secs_f64();
        println!(
            "ratio: overlay/direct COMP_REGS dword read ({rev:?}) = {r:.3} (overhead {:+.1} %)",
            (r - 1.0) * 100.0
        );
    }
    let one = per_call(9, 20, || bring_up(1));
    let sixteen = per_call(9, 5, || bring_up(16));
    println!(
        "ratio: bring-up 16 devices / 1 device = {:.2} (linear = 16); per device {:.3} ms of the 1 ms budget",
        sixteen.as_secs_f64() / one.as_secs_f64(),
        sixteen.as_secs_f64() * 1000.0 / 16.0
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
