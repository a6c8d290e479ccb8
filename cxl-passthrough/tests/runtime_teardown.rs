//! Teardown releases every mapping and fd: 1,000 create / probe / boot / map / drop
//! cycles leave the process's open fds and memory mappings at their baseline.
//! (Its own test binary, one test, so no other test changes the counts meanwhile.)
#![allow(clippy::unwrap_used)]

mod runtime_common;

use std::sync::Arc;

use cxl_passthrough::backend::ResetKind;
use cxl_passthrough::backend::sim::OffsetLayout;
use cxl_passthrough::runtime::NoHooks;
use cxl_passthrough::uapi::UapiRevision;
use runtime_common::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn thousand_devices_leak_nothing() {
    let cycle = |i: usize| {
        let rev = if i.is_multiple_of(2) {
            UapiRevision::V2
        } else {
            UapiRevision::V3
        };
        let s = sim(rev, BAR_LAYOUTS[i % 3], OffsetLayout::Kernel);
        let backend = if i % 4 < 2 {
            s.clone() as Arc<_>
        } else {
            kernel_over_sim(s.clone())
        };
        let (dev, _) = device(backend);
        dev.boot().unwrap();
        let dpa = dev.map_dpa().unwrap();
        let areas = dev.map_sparse().unwrap();
        if i.is_multiple_of(10) {
            dev.reset(ResetKind::Device, &mut NoHooks).unwrap();
        }
        drop((dpa, areas, dev, s));
    };
    // Warm up lazily initialised state (logger, allocator arenas, test harness threads).
    for i in 0..4 {
        cycle(i);
    }
    let (fds, maps) = (open_fds(), mappings());
    for i in 0..1000 {
        cycle(i);
    }
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    let now = mappings();
    // The allocator may split or merge a few of its own heap mappings; a leak of one
    // DPA or BAR mapping per cycle would add hundreds.
    assert!(now <= maps + 8, "mappings leaked: {maps} -> {now}");
}
