//! Property tests over arbitrary topologies: whatever `validate` accepts, every builder
//! encodes without panicking (acpi_tables' AML encoders assert on bad ranges) and the
//! tables are self-consistent; whatever it rejects, no builder emits anything.

use proptest::prelude::*;

use crate::{
    AcpiDescription, CfmwsWindow, HostBridge, IntxRoute, MmioWindow, build_cedt, build_ssdt,
    cxl_aml, description::WINDOW_GRANULE,
};

fn mmio() -> impl Strategy<Value = Option<MmioWindow>> {
    proptest::option::of(
        prop_oneof![
            (any::<u64>(), any::<u64>()),
            (0u64..0x1_0000_0000, 0u64..0x1_0000_0000),
        ]
        .prop_map(|(base, size)| MmioWindow { base, size }),
    )
}

fn bridge() -> impl Strategy<Value = HostBridge> {
    (
        0u32..6,
        0u16..2,
        any::<u8>(),
        any::<u8>(),
        prop_oneof![any::<u64>(), (1u64..0x1_0000).prop_map(|x| x << 16)],
        mmio(),
        mmio(),
        proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u32>()), 0..4),
    )
        .prop_map(
            |(uid, segment, bus_start, bus_end, chbcr_base, mmio32, mmio64, routes)| HostBridge {
                uid,
                segment,
                bus_start,
                bus_end,
                chbcr_base,
                mmio32,
                mmio64,
                intx_routes: routes
                    .into_iter()
                    .map(|(device, pin, gsi)| IntxRoute { device, pin, gsi })
                    .collect(),
            },
        )
}

fn window() -> impl Strategy<Value = CfmwsWindow> {
    (
        prop_oneof![
            any::<u64>(),
            (0u64..0x1000).prop_map(|x| x * WINDOW_GRANULE)
        ],
        prop_oneof![any::<u64>(), (0u64..0x40).prop_map(|x| x * WINDOW_GRANULE)],
        proptest::collection::vec(0u32..6, 0..5),
        any::<u16>(),
    )
        .prop_map(|(base, size, targets, restrictions)| {
            let mut w = CfmwsWindow::new(base, size, targets);
            w.restrictions = crate::WindowRestrictions::from_bits(restrictions & 0x7F);
            w
        })
}

/// Mostly valid topologies: distinct UIDs and segments, disjoint CHBCRs and windows.
/// Random sizes and targets still produce some invalid ones.
fn plausible() -> impl Strategy<Value = AcpiDescription> {
    let bridges = proptest::collection::vec(
        (
            any::<u8>(),
            0u8..4,
            proptest::option::of(1u64..0x1000_0000),
            proptest::option::of(1u64..1 << 36),
        ),
        1..4,
    );
    let windows = proptest::collection::vec((1u64..4, 1usize..4, any::<u16>(), 0u8..7), 0..3);
    (bridges, windows).prop_map(|(bridges, windows)| {
        let host_bridges: Vec<HostBridge> = bridges
            .into_iter()
            .enumerate()
            .map(|(i, (bus, extra, m32, m64))| {
                let i64 = i as u64;
                HostBridge {
                    uid: 3 * i as u32 + 1,
                    segment: i as u16,
                    bus_start: bus,
                    bus_end: bus.saturating_add(extra),
                    chbcr_base: 0xfe00_0000 + (i64 << 16),
                    mmio32: m32.map(|size| MmioWindow {
                        base: 0xc000_0000 + (i64 << 28),
                        size,
                    }),
                    mmio64: m64.map(|size| MmioWindow {
                        base: (i64 + 1) << 40,
                        size,
                    }),
                    intx_routes: vec![IntxRoute {
                        device: 0,
                        pin: 0,
                        gsi: 16 + i as u32,
                    }],
                }
            })
            .collect();
        let windows = windows
            .into_iter()
            .enumerate()
            .map(|(j, (k, ways, qtg, g))| {
                let targets: Vec<u32> = host_bridges.iter().take(ways).map(|hb| hb.uid).collect();
                let size = k * WINDOW_GRANULE * targets.len() as u64;
                let mut w = CfmwsWindow::new((0x10 + 0x10 * j as u64) << 30, size, targets);
                w.qtg_id = qtg;
                w.granularity = crate::Granularity::from_bytes(256 << g).unwrap_or_default();
                w
            })
            .collect();
        AcpiDescription {
            host_bridges,
            windows,
            ..Default::default()
        }
    })
}

fn arbitrary() -> impl Strategy<Value = AcpiDescription> {
    (
        proptest::collection::vec(bridge(), 0..4),
        proptest::collection::vec(window(), 0..3),
    )
        .prop_map(|(host_bridges, windows)| AcpiDescription {
            host_bridges,
            windows,
            ..Default::default()
        })
}

proptest! {
    #[test]
    fn builders_agree_with_validation(t in prop_oneof![plausible(), arbitrary()]) {
        match t.validate() {
            Ok(()) => {
                let cedt = build_cedt(&t).unwrap();
                let len = u32::from_le_bytes([cedt[4], cedt[5], cedt[6], cedt[7]]) as usize;
                prop_assert_eq!(len, cedt.len());
                let expected = 36 + 32 * t.host_bridges.len()
                    + t.windows.iter().map(|w| 36 + 4 * w.targets.len()).sum::<usize>();
                prop_assert_eq!(cedt.len(), expected);
                prop_assert_eq!(cedt.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
                let aml = cxl_aml(&t).unwrap();
                prop_assert_eq!(&build_ssdt(&t).unwrap()[36..], &aml[..]);
            }
            Err(e) => {
                prop_assert_eq!(build_cedt(&t), Err(e.clone()));
                prop_assert_eq!(cxl_aml(&t), Err(e.clone()));
                prop_assert_eq!(build_ssdt(&t), Err(e));
            }
        }
    }
}
