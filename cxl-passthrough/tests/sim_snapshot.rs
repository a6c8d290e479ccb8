//! `SimDevice::snapshot` / `restore`: after arbitrary operations and a restore, a device
//! answers exactly like a twin that never saw those operations (the guard against state
//! leaking between fuzz inputs that reuse one device).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod sim_common;

use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::sim::{
    BarLayout, Errno, Fault, Op, Prot, SimConfig, SimDevice, Stats,
};
use cxl_passthrough::uapi::UapiRevision;
use proptest::prelude::*;
use sim_common::BAR_LAYOUTS;

/// Config space, the aux BAR (0), the component BAR (2).
const CONFIG: u32 = 7;
const BARS: [u32; 2] = [0, 2];
/// Bytes at each end of the DPA that operations touch and observations compare.
const DPA_EDGE: u64 = 0x2000;

/// One operation on the device, by every path that changes state.
#[derive(Clone, Debug)]
enum SimOp {
    /// Config-space write of 1, 2 or 4 bytes.
    Config { off: u16, len: u8, value: u32 },
    /// COMP_REGS dword write (region-relative dword index).
    Comp { dword: u16, value: u32 },
    /// Raw BAR write (BAR 0 or 2), at a page start, the page's end, or anywhere.
    Bar { bar: bool, off: u32, data: Vec<u8> },
    /// pwrite into the DPA region near its start (`end` false) or its end.
    Dpa { end: bool, off: u16, data: Vec<u8> },
    /// Host write into device memory.
    DpaHost { end: bool, off: u16, data: Vec<u8> },
    /// Write through a shared mapping of the DPA region's first page.
    Mapped { off: u16, value: u32 },
    /// `VFIO_DEVICE_RESET`.
    Reset,
    /// Fault injection.
    Inject(u8),
    /// Last close of the device fd.
    Close,
    /// Open of the device fd.
    Open,
}

fn op() -> impl Strategy<Value = SimOp> {
    let data = || prop::collection::vec(any::<u8>(), 1..16);
    prop_oneof![
        4 => (0u16..0x1000, prop::sample::select(vec![1u8, 2, 4]), any::<u32>())
            .prop_map(|(off, len, value)| SimOp::Config { off: off & !(u16::from(len) - 1), len, value }),
        6 => (0u16..0x400, any::<u32>()).prop_map(|(dword, value)| SimOp::Comp { dword, value }),
        2 => (any::<bool>(), any::<u32>(), data()).prop_map(|(bar, off, data)| SimOp::Bar { bar, off, data }),
        2 => (any::<bool>(), any::<u16>(), data()).prop_map(|(end, off, data)| SimOp::Dpa { end, off, data }),
        1 => (any::<bool>(), any::<u16>(), data()).prop_map(|(end, off, data)| SimOp::DpaHost { end, off, data }),
        1 => (any::<u16>(), any::<u32>()).prop_map(|(off, value)| SimOp::Mapped { off, value }),
        1 => Just(SimOp::Reset),
        1 => any::<u8>().prop_map(SimOp::Inject),
        1 => Just(SimOp::Close),
        1 => Just(SimOp::Open),
    ]
}

fn dpa_index(dev: &SimDevice) -> u32 {
    match dev.config().revision {
        UapiRevision::V2 | UapiRevision::V4 => 9,
        UapiRevision::V3 => 10,
    }
}

fn comp_index(dev: &SimDevice) -> u32 {
    match dev.config().revision {
        UapiRevision::V2 | UapiRevision::V4 => 10,
        UapiRevision::V3 => 9,
    }
}

/// Offset inside the DPA edge windows.
fn dpa_off(dev: &SimDevice, end: bool, off: u16, len: usize) -> u64 {
    let size = dev.config().dpa_size;
    let o = u64::from(off) % (DPA_EDGE - len as u64);
    if end { size - DPA_EDGE + o } else { o }
}

/// Applies `op`; results are ignored (a failing operation is an operation too).
fn apply(dev: &SimDevice, op: &SimOp) {
    let at = |index: u32| dev.region_offset(index).unwrap();
    match op {
        SimOp::Config { off, len, value } => {
            let b = value.to_le_bytes();
            let _ = dev.pwrite(at(CONFIG) + u64::from(*off), &b[..usize::from(*len)]);
        }
        SimOp::Comp { dword, value } => {
            let _ = dev.pwrite(
                at(comp_index(dev)) + u64::from(*dword) * 4,
                &value.to_le_bytes(),
            );
        }
        SimOp::Bar { bar, off, data } => {
            let index = BARS[usize::from(*bar)];
            let size = dev.config().bar_size.max(64 << 10);
            let _ = dev.pwrite(at(index) + u64::from(*off) % size, data);
        }
        SimOp::Dpa { end, off, data } => {
            let o = dpa_off(dev, *end, *off, data.len());
            let _ = dev.pwrite(at(dpa_index(dev)) + o, data);
        }
        SimOp::DpaHost { end, off, data } => {
            let _ = dev.dpa_host_write(dpa_off(dev, *end, *off, data.len()), data);
        }
        SimOp::Mapped { off, value } => {
            if let Ok(m) = dev.mmap(at(dpa_index(dev)), 4096, Prot::ReadWrite) {
                // A zapped region SIGBUSes: only write while the pages are present.
                if !dev.dpa_zapped() {
                    let _ = m.write_u32((usize::from(*off) % 4096) & !3, *value);
                }
            }
        }
        SimOp::Reset => {
            let _ = dev.ioctl_reset();
        }
        SimOp::Inject(k) => dev.inject(match k % 5 {
            0 => Fault::ResetFails,
            1 => Fault::ShortRead,
            2 => Fault::ShortWrite,
            3 => Fault::Eio {
                op: Op::Read,
                count: Some(1),
            },
            _ => Fault::Eio {
                op: Op::Write,
                count: Some(2),
            },
        }),
        SimOp::Close => dev.close(),
        SimOp::Open => {
            let _ = dev.open();
        }
    }
}

/// Everything the device shows, through every public path. Reading changes counters and
/// consumes faults, identically on two devices in the same state.
#[derive(Debug, PartialEq)]
struct Observation {
    stats: Stats,
    dpa_active: bool,
    dpa_zapped: bool,
    hw_hdm: String,
    hw_config: Vec<u8>,
    shadow: Vec<Option<u32>>,
    host_dpa: Vec<Result<Vec<u8>, Errno>>,
    answers: Vec<Result<(usize, Vec<u8>), Errno>>,
    infos: Vec<Option<Vec<u8>>>,
}

fn observe(dev: &SimDevice) -> Observation {
    let stats = dev.stats();
    let mut hw_config = vec![0u8; 4096];
    dev.hw_config_read(0, &mut hw_config);
    let shadow = (0..0x4000u64)
        .step_by(4)
        .map(|o| dev.shadow_dword(o))
        .collect();
    let size = dev.config().dpa_size;
    let host_dpa = [0, size - DPA_EDGE]
        .into_iter()
        .map(|o| {
            let mut b = vec![0u8; DPA_EDGE as usize];
            dev.dpa_host_read(o, &mut b).map(|()| b)
        })
        .collect();
    let mut answers = Vec::new();
    let mut pread = |at: u64, len: usize| {
        let mut b = vec![0u8; len];
        answers.push(dev.pread(at, &mut b).map(|n| (n, b)));
    };
    let at = |index: u32| dev.region_offset(index).unwrap();
    pread(at(CONFIG), 4096);
    for d in 0..0x4000u64 / 4 {
        pread(at(comp_index(dev)) + d * 4, 4);
    }
    for index in BARS {
        let size = dev.config().bar_size.max(64 << 10);
        for page in (0..size).step_by(4096) {
            pread(at(index) + page, 16);
            pread(at(index) + page + 4096 - 16, 16);
        }
        // Where short writes near 0 land (byte by byte, so keep it to 2 pages).
        pread(at(index), 8192);
    }
    for o in [0, size - DPA_EDGE] {
        pread(at(dpa_index(dev)) + o, DPA_EDGE as usize);
    }
    let mut infos = vec![dev.device_info().ok()];
    infos.extend((0..12).map(|i| dev.region_info(i).ok()));
    Observation {
        stats,
        dpa_active: dev.dpa_active(),
        dpa_zapped: dev.dpa_zapped(),
        hw_hdm: format!("{:?}", dev.hw_hdm()),
        hw_config,
        shadow,
        host_dpa,
        answers,
        infos,
    }
}

fn config(rev: UapiRevision, bar_layout: BarLayout, v2_decoders: bool) -> SimConfig {
    SimConfig {
        bar_layout,
        decoder_count: if v2_decoders && rev == UapiRevision::V2 {
            2
        } else {
            1
        },
        ..SimConfig::new(rev)
    }
}

#[test]
fn restore_onto_another_device_is_refused() {
    let a = SimDevice::new(SimConfig::new(UapiRevision::V3)).unwrap();
    let b = SimDevice::new(SimConfig::new(UapiRevision::V3)).unwrap();
    let snap = a.snapshot().unwrap();
    assert_eq!(b.restore(&snap), Err(Errno::EINVAL));
    assert_eq!(a.restore(&snap), Ok(()));
}

#[test]
fn fresh_device_restores_to_fresh() {
    for rev in UapiRevision::ALL {
        for bar_layout in BAR_LAYOUTS {
            let cfg = config(rev, bar_layout, false);
            let dev = SimDevice::new(cfg.clone()).unwrap();
            let snap = dev.snapshot().unwrap();
            assert!(snap.mem_bytes() > 0, "BAR marker pages are saved");
            for op in [
                SimOp::Comp {
                    dword: 0x84,
                    value: 0,
                },
                SimOp::Config {
                    off: 4,
                    len: 2,
                    value: 0,
                },
                SimOp::Dpa {
                    end: false,
                    off: 8,
                    data: vec![0xAA; 8],
                },
                SimOp::Bar {
                    bar: false,
                    off: 0,
                    data: vec![0x55; 4],
                },
                SimOp::Reset,
                SimOp::Close,
            ] {
                apply(&dev, &op);
            }
            dev.restore(&snap).unwrap();
            let fresh = SimDevice::new(cfg).unwrap();
            assert_eq!(observe(&dev), observe(&fresh), "{rev:?} {bar_layout:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Snapshot after `prefix`, run `a`, restore, run `b`, restore: the device then
    /// answers like a twin that only ran `prefix`.
    #[test]
    fn restore_undoes_everything(
        rev in prop::sample::select(UapiRevision::ALL.to_vec()),
        bar_layout in prop::sample::select(BAR_LAYOUTS.to_vec()),
        v2_decoders in any::<bool>(),
        prefix in prop::collection::vec(op(), 0..8),
        a in prop::collection::vec(op(), 0..24),
        b in prop::collection::vec(op(), 0..24),
    ) {
        let cfg = config(rev, bar_layout, v2_decoders);
        let dev = SimDevice::new(cfg.clone()).unwrap();
        let twin = SimDevice::new(cfg).unwrap();
        for op in &prefix {
            apply(&dev, op);
            apply(&twin, op);
        }
        let snap = dev.snapshot().unwrap();
        for op in &a {
            apply(&dev, op);
        }
        dev.restore(&snap).unwrap();
        for op in &b {
            apply(&dev, op);
        }
        dev.restore(&snap).unwrap();
        prop_assert_eq!(observe(&dev), observe(&twin));
    }
}
