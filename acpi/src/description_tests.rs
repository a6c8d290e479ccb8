use super::*;

const GIB: u64 = 1 << 30;

fn hb(uid: u32, bus: u8, chbcr_base: u64) -> HostBridge {
    HostBridge {
        uid,
        segment: 0,
        bus_start: bus,
        bus_end: bus,
        chbcr_base,
        mmio32: None,
        mmio64: None,
        intx_routes: Vec::new(),
    }
}

fn good() -> AcpiDescription {
    AcpiDescription {
        host_bridges: vec![hb(7, 0x80, 0xfed0_0000), hb(9, 0x90, 0xfed1_0000)],
        windows: vec![
            CfmwsWindow::new(4 * GIB, GIB, vec![7]),
            CfmwsWindow::new(8 * GIB, 2 * GIB, vec![7, 9]),
        ],
        ..Default::default()
    }
}

fn err(f: impl FnOnce(&mut AcpiDescription)) -> DescriptionError {
    let mut t = good();
    f(&mut t);
    t.validate().unwrap_err()
}

#[test]
fn good_topology_validates() {
    good().validate().unwrap();
    assert_eq!(WindowRestrictions::type2_locked().into_bits(), 0x15);
    assert_eq!(Granularity::from_bytes(8192), Some(Granularity::K8));
    assert_eq!(Granularity::from_bytes(100), None);
    assert_eq!(Granularity::K16.bytes(), 16384);
}

#[test]
fn host_bridge_errors() {
    assert_eq!(
        err(|t| t.host_bridges.clear()),
        DescriptionError::NoHostBridge
    );
    assert_eq!(
        err(|t| t.host_bridges[1].uid = 7),
        DescriptionError::DuplicateUid(7)
    );
    assert!(matches!(
        err(|t| t.host_bridges[0].bus_end = 0x7f),
        DescriptionError::EmptyBusRange { uid: 7, .. }
    ));
    assert_eq!(
        err(|t| t.host_bridges[1].bus_start = 0x80),
        DescriptionError::BusOverlap {
            segment: 0,
            a: 7,
            b: 9
        }
    );
    // Same buses in another segment are fine.
    let mut t = good();
    t.host_bridges[1].bus_start = 0x80;
    t.host_bridges[1].segment = 1;
    t.validate().unwrap();
    for base in [0, 0xfed0_1000, 0xfed0_8000] {
        assert_eq!(
            err(|t| t.host_bridges[0].chbcr_base = base),
            DescriptionError::BadChbcrBase { uid: 7, base }
        );
    }
    let w = |base, size| Some(MmioWindow { base, size });
    for (m32, m64) in [
        (w(0xe000_0000, 0), None),
        (w(0xf000_0000, 0x2000_0000), None),
        (None, w(u64::MAX, 2)),
    ] {
        assert!(matches!(
            err(|t| {
                t.host_bridges[0].mmio32 = m32;
                t.host_bridges[0].mmio64 = m64;
            }),
            DescriptionError::BadMmioWindow { uid: 7, .. }
        ));
    }
    let many = (0..257).map(|i| hb(i, 0, 0)).collect();
    assert!(matches!(
        err(|t| t.host_bridges = many),
        DescriptionError::TooManyHostBridges { count: 257, .. }
    ));
}

#[test]
fn window_errors() {
    for n in [0, 5, 17] {
        assert_eq!(
            err(|t| t.windows[0].targets = vec![7; n]),
            DescriptionError::InvalidWays { index: 0, count: n }
        );
    }
    assert_eq!(
        err(|t| t.windows[0].targets = vec![8]),
        DescriptionError::UnknownTarget { index: 0, uid: 8 }
    );
    assert_eq!(
        err(|t| t.windows[1].targets = vec![9, 9]),
        DescriptionError::DuplicateTarget { index: 1, uid: 9 }
    );
    assert_eq!(
        err(|t| t.windows[0].base += 0x100_0000),
        DescriptionError::WindowBaseAlignment {
            index: 0,
            base: 4 * GIB + 0x100_0000
        }
    );
    // 2 ways need a multiple of 512 MiB.
    assert_eq!(
        err(|t| t.windows[1].size = 768 << 20),
        DescriptionError::WindowSize {
            index: 1,
            size: 768 << 20,
            granule: 512 << 20
        }
    );
    assert!(matches!(
        err(|t| t.windows[0].size = 0),
        DescriptionError::WindowSize { index: 0, .. }
    ));
    assert!(matches!(
        err(|t| t.windows[0].base = !(WINDOW_GRANULE - 1)),
        DescriptionError::WindowWraps { index: 0, .. }
    ));
    assert_eq!(
        err(|t| t.windows[0].restrictions = WindowRestrictions::from_bits(0x55)),
        DescriptionError::ReservedRestrictions {
            index: 0,
            bits: 0x55
        }
    );
}

#[test]
fn overlaps_are_rejected() {
    assert!(matches!(
        err(|t| t.windows[1].base = 4 * GIB),
        DescriptionError::Overlap { .. }
    ));
    assert!(matches!(
        err(|t| t.host_bridges[1].chbcr_base = 0xfed0_0000),
        DescriptionError::Overlap { .. }
    ));
    let e = err(|t| {
        t.host_bridges[0].mmio64 = Some(MmioWindow {
            base: 4 * GIB + 0x1000,
            size: 0x1000,
        })
    });
    assert_eq!(
        e,
        DescriptionError::Overlap {
            a: "mmio64 window of host bridge UID 7".into(),
            b: "window 0".into()
        }
    );
}

#[test]
fn intx_routes_are_checked() {
    use crate::description::IntxRoute;
    let route = |device, pin| IntxRoute {
        device,
        pin,
        gsi: 16,
    };
    for routes in [
        vec![route(32, 0)],
        vec![route(0, 4)],
        vec![route(5, 1), route(6, 1), route(5, 1)],
    ] {
        let mut b = hb(7, 0, 0xfe00_0000);
        b.intx_routes = routes;
        let t = AcpiDescription {
            host_bridges: vec![b],
            windows: vec![CfmwsWindow::new(0x1_0000_0000, 0x1000_0000, vec![7])],
            ..Default::default()
        };
        assert!(
            matches!(
                t.validate(),
                Err(DescriptionError::BadIntxRoute { uid: 7, .. })
            ),
            "{:?}",
            t.validate()
        );
    }
    let mut b = hb(7, 0, 0xfe00_0000);
    b.intx_routes = vec![route(0, 0), route(0, 1), route(31, 3)];
    let t = AcpiDescription {
        host_bridges: vec![b],
        windows: vec![CfmwsWindow::new(0x1_0000_0000, 0x1000_0000, vec![7])],
        ..Default::default()
    };
    t.validate().unwrap();
}
