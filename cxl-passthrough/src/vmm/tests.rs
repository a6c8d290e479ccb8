//! The facade's lifecycle against the simulator, with recording VMM callbacks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cxl_acpi::HostBridge;
use vm_memory::MmapRegion;

use super::*;
use crate::backend::sim::SimConfig;
use crate::regs::hdm::DecoderReg;
use crate::regs::pci::{PCIE_DEVCTL_BCR_FLR, PCIE_DEVICE_CONTROL};
use crate::runtime::probe::ProbeError;
use crate::uapi::UapiRevision;

const WINDOW_AREA: u64 = 0x40_0000_0000;
const BAR_GPA: u64 = 0x80_0000_0000;
const CHBCR_GPA: u64 = 0xfd00_0000;

/// What the VMM saw: `(map?, gpa, len)` per slot call.
#[derive(Clone, Debug, Default)]
struct Slots {
    log: Arc<Mutex<Vec<(bool, u64, usize)>>>,
    fail_map: Arc<AtomicBool>,
}

impl MemorySlots for Slots {
    type Error = std::io::Error;
    fn map(&mut self, gpa: u64, region: &MmapRegion) -> Result<(), Self::Error> {
        if self.fail_map.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("no free memory slot"));
        }
        self.log
            .lock()
            .expect("log")
            .push((true, gpa, region.size()));
        Ok(())
    }
    fn unmap(&mut self, gpa: u64, region: &MmapRegion) -> Result<(), Self::Error> {
        self.log
            .lock()
            .expect("log")
            .push((false, gpa, region.size()));
        Ok(())
    }
}

#[derive(Default)]
struct Bus(Vec<(MmioPart, u64, u64, Arc<dyn MmioHandler>)>);

impl MmioRegistry for Bus {
    type Error = std::io::Error;
    fn register(
        &mut self,
        part: MmioPart,
        gpa: u64,
        size: u64,
        handler: Arc<dyn MmioHandler>,
    ) -> Result<(), Self::Error> {
        if self
            .0
            .iter()
            .any(|(_, g, s, _)| gpa < g + s && *g < gpa + size)
        {
            return Err(std::io::Error::other("overlapping MMIO range"));
        }
        self.0.push((part, gpa, size, handler));
        Ok(())
    }
}

impl Bus {
    fn read32(&self, gpa: u64) -> u32 {
        let (_, base, _, h) = self
            .0
            .iter()
            .find(|(_, g, s, _)| (*g..g + s).contains(&gpa))
            .expect("a handler for the address");
        let mut b = [0u8; 4];
        h.read(gpa - base, &mut b);
        u32::from_le_bytes(b)
    }
}

fn booted(rev: UapiRevision) -> (Platform, CxlDevice) {
    let backend = DevicePath::parse(&format!("sim:{rev}"))
        .expect("path")
        .open()
        .expect("open");
    let mut platform = Platform::new(WINDOW_AREA, 1 << 40, 4096).expect("area");
    let (dev, d) = platform
        .boot_device(backend, RevisionChoice::Auto)
        .expect("boot");
    assert!(d.committed && d.locked, "{rev:?}: {d:?}");
    assert_eq!(
        (d.base, d.size),
        (WINDOW_AREA, dev.desc().dpa.size),
        "{rev:?}"
    );
    (platform, dev)
}

/// Decoder 0's base as the guest reads it through the registered overlay.
fn guest_decoder0_base(bus: &Bus, dev: &CxlDevice) -> u64 {
    let block = BAR_GPA + dev.bar_plan().overlay.start;
    let hdm = dev.desc().hdm.block_offset;
    let lo = bus.read32(block + hdm + DecoderReg::BaseLo.at(0));
    let hi = bus.read32(block + hdm + DecoderReg::BaseHi.at(0));
    u64::from(hi) << 32 | u64::from(lo & 0xf000_0000)
}

#[test]
fn the_whole_lifecycle_runs_on_every_revision() {
    for rev in UapiRevision::ALL {
        let (mut platform, dev) = booted(rev);
        let slots = Slots::default();

        let dpa = GuestMapping::device_memory(&dev, slots.clone()).expect("dpa");
        assert_eq!(dpa.gpa(), dev.window().base);
        let areas = GuestMapping::bar_areas(&dev, BAR_GPA, || slots.clone()).expect("areas");
        assert_eq!(areas.len(), dev.bar_plan().mapped.len(), "{rev:?}");
        let mut expected: Vec<_> = vec![(true, WINDOW_AREA, dev.desc().dpa.size as usize)];
        expected.extend(
            dev.bar_plan()
                .mapped
                .iter()
                .map(|a| (true, BAR_GPA + a.offset, a.size as usize)),
        );
        assert_eq!(*slots.log.lock().expect("log"), expected, "{rev:?}");

        let mut bus = Bus::default();
        register_component_bar(&dev, BAR_GPA, &mut bus).expect("mmio");
        let parts: Vec<_> = bus.0.iter().map(|r| r.0).collect();
        let mut expected = vec![MmioPart::ComponentRegisters];
        expected.extend((0..dev.bar_plan().forwarded.len()).map(MmioPart::ForwardedBar));
        assert_eq!(parts, expected, "{rev:?}");
        assert_eq!(guest_decoder0_base(&bus, &dev), WINDOW_AREA, "{rev:?}");

        let plan = Platform::plan_topology(&dev).expect("topology");
        assert_eq!(plan.root_port_number, ROOT_PORT_NUMBER);
        let bridge = HostBridge {
            uid: 1,
            segment: 1,
            bus_start: 0,
            bus_end: SECONDARY_BUS,
            chbcr_base: CHBCR_GPA,
            mmio32: None,
            mmio64: None,
            intx_routes: Vec::new(),
        };
        let chbcr = platform
            .add_host_bridge(bridge.clone(), &plan)
            .expect("bridge");
        let decoder = match chbcr.config() {
            cxl_acpi::ChbcrConfig::Committed(d) => d,
            other => panic!("{rev:?}: {other:?}"),
        };
        assert_eq!(
            (decoder.base, decoder.size),
            (plan.window.base, plan.window.size)
        );
        assert_eq!(decoder.target_port, ROOT_PORT_NUMBER);
        assert!(platform.is_cxl_segment(1) && !platform.is_cxl_segment(2));
        let err = platform
            .add_host_bridge(bridge, &plan)
            .expect_err("same segment");
        assert!(matches!(err, VmmError::SegmentInUse(1)), "{err:?}");
        let cedt = platform.cedt().expect("cedt").expect("a bridge");
        assert_eq!(&cedt[..4], b"CEDT");
        let aml = platform.aml().expect("aml").expect("a bridge");
        assert!(aml.windows(8).any(|w| w == b"ACPI0016"));
        assert_eq!(
            &platform.ssdt().expect("ssdt").expect("a bridge")[..4],
            b"SSDT"
        );

        let port = root_port(
            &plan,
            0xc000_0000,
            vec![DeviceBar {
                base: BAR_GPA,
                size: dev.desc().bar.size,
                prefetchable: true,
            }],
        )
        .expect("root port");
        assert_eq!(port.port_number(), ROOT_PORT_NUMBER);

        // VMM reset: unmap everything, reset, re-lock, map again.
        let mut mappings = vec![dpa];
        mappings.extend(areas);
        slots.log.lock().expect("log").clear();
        let d = dev.reset(ResetKind::Device, &mut mappings).expect("reset");
        assert_eq!(d.base, WINDOW_AREA, "{rev:?}");
        let log = slots.log.lock().expect("log").clone();
        let n = mappings.len();
        assert_eq!(log.len(), 2 * n, "{rev:?}: {log:?}");
        assert!(
            log[..n].iter().all(|e| !e.0) && log[n..].iter().all(|e| e.0),
            "{log:?}"
        );
        assert!(mappings.iter().all(GuestMapping::is_mapped));
        assert_eq!(guest_decoder0_base(&bus, &dev), WINDOW_AREA, "{rev:?}");
    }
}

#[test]
fn a_guest_flr_is_followed_by_a_relock() {
    for rev in UapiRevision::ALL {
        let (_, dev) = booted(rev);
        let slots = Slots::default();
        let mut dpa = GuestMapping::device_memory(&dev, slots.clone()).expect("dpa");
        let cap = dev.desc().pcie_cap.expect("PCIe capability");
        let at = u64::from(cap + PCIE_DEVICE_CONTROL);
        let data = PCIE_DEVCTL_BCR_FLR.to_le_bytes();
        let config = dev.desc().config.file_offset;
        let (written, outcome) = guest_config_write(&dev, at, &data, &mut dpa, || {
            // The guest must not see the memory while the kernel resets it.
            let log = slots.log.lock().expect("log").clone();
            assert_eq!(log.last().map(|e| e.0), Some(false), "{rev:?}: {log:?}");
            dev.backend().write(config, at, &data)
        });
        assert_eq!(written.expect("forwarded"), 2);
        let outcome = outcome.expect("an FLR");
        assert_eq!(outcome.kind, GuestReset::Flr);
        assert!(outcome.quiesce.is_ok());
        let d = outcome.relock.expect("re-locked");
        assert_eq!(d.base, WINDOW_AREA, "{rev:?}");
        assert!(dpa.is_mapped());

        // An ordinary write is forwarded and resets nothing.
        let (_, none) = guest_config_write(&dev, 0x4, &[0x6], &mut dpa, || ());
        assert!(none.is_none());
    }
}

#[test]
fn a_failed_remap_fences_the_device() {
    let (_, dev) = booted(UapiRevision::V3);
    let slots = Slots::default();
    let mut dpa = GuestMapping::device_memory(&dev, slots.clone()).expect("dpa");
    slots.fail_map.store(true, Ordering::Relaxed);
    let err = dev
        .reset(ResetKind::Device, &mut dpa)
        .expect_err("restore fails");
    assert!(
        matches!(err, crate::runtime::DeviceError::Hook { .. }),
        "{err:?}"
    );
    assert!(matches!(dev.current_state(), DeviceState::Fenced(_)));
    assert!(
        !dpa.is_mapped(),
        "the guest must not see the memory of a fenced device"
    );
    // The VMM's error is the source of the hook error.
    let chain = crate::errors::Chain(&err).to_string();
    assert!(chain.contains("no free memory slot"), "{chain}");
}

#[test]
fn a_mapping_the_vmm_refuses_is_a_typed_error() {
    let (_, dev) = booted(UapiRevision::V2);
    let slots = Slots::default();
    slots.fail_map.store(true, Ordering::Relaxed);
    let err = GuestMapping::device_memory(&dev, slots).expect_err("refused");
    assert!(
        matches!(
            err,
            VmmError::Map {
                what: "device memory",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_device_without_cxl_is_refused_at_probe_and_takes_no_window() {
    let backend = DevicePath::Sim(SimConfig {
        disable_cxl: true,
        ..SimConfig::new(UapiRevision::V2)
    })
    .open()
    .expect("open");
    let mut platform = Platform::new(WINDOW_AREA, 1 << 40, 4096).expect("area");
    let err = platform
        .boot_device(backend, RevisionChoice::Auto)
        .expect_err("not CXL");
    assert!(
        matches!(err, VmmError::Probe(ProbeError::NotCxl)),
        "{err:?}"
    );
    let backend = DevicePath::parse("sim:v2")
        .expect("path")
        .open()
        .expect("open");
    let (dev, _) = platform
        .boot_device(backend, RevisionChoice::Auto)
        .expect("boot");
    assert_eq!(
        dev.window().base,
        WINDOW_AREA,
        "the refused device took no window"
    );
}

#[test]
fn a_vmm_fd_is_duplicated_and_a_non_vfio_fd_fails_at_probe() {
    use std::os::fd::AsFd;
    let file = std::fs::File::open("/dev/null").expect("/dev/null");
    let backend = backend_from_device_fd(file.as_fd()).expect("dup");
    let mut platform = Platform::new(WINDOW_AREA, 1 << 40, 4096).expect("area");
    let err = platform
        .plan_device(backend, RevisionChoice::Auto)
        .expect_err("not a VFIO device");
    assert!(
        matches!(err, VmmError::Probe(ProbeError::Backend(_))),
        "{err:?}"
    );
    // The VMM's own fd stays open.
    assert!(file.metadata().is_ok());
}

#[test]
fn a_moved_bar_area_is_unmapped_at_the_old_address_and_mapped_at_the_new_one() {
    let (_, dev) = booted(UapiRevision::V2);
    let slots = Slots::default();
    let mut areas = GuestMapping::bar_areas(&dev, BAR_GPA, || slots.clone()).expect("areas");
    let area = areas
        .first_mut()
        .expect("the simulator's BAR has a sparse area");
    let (old, len) = (area.gpa(), area.region().size());
    slots.log.lock().expect("log").clear();
    area.move_to(old + 0x1000_0000).expect("move");
    assert_eq!(
        *slots.log.lock().expect("log"),
        vec![(false, old, len), (true, old + 0x1000_0000, len)]
    );
    slots.fail_map.store(true, Ordering::Relaxed);
    let err = area.move_to(old).expect_err("the VMM refuses");
    assert!(matches!(err, VmmError::Map { .. }), "{err:?}");
    assert!(!area.is_mapped(), "seen at neither address");
}

#[test]
fn a_bar_placed_where_its_areas_overflow_is_refused_before_the_vmm_is_asked() {
    let (_, dev) = booted(UapiRevision::V2);
    let slots = Slots::default();
    let err = GuestMapping::bar_areas(&dev, u64::MAX, || slots.clone()).expect_err("overflow");
    assert!(
        matches!(err, VmmError::AddressOverflow { base: u64::MAX, .. }),
        "{err:?}"
    );
    let mut bus = Bus::default();
    let err = register_component_bar(&dev, u64::MAX, &mut bus).expect_err("overflow");
    assert!(matches!(err, VmmError::AddressOverflow { .. }), "{err:?}");
    assert!(slots.log.lock().expect("log").is_empty() && bus.0.is_empty());
}

#[test]
fn a_dropped_mapping_is_taken_away_from_the_guest_first() {
    let (_, dev) = booted(UapiRevision::V3);
    let slots = Slots::default();
    let dpa = GuestMapping::device_memory(&dev, slots.clone()).expect("dpa");
    let len = dpa.region().size();
    drop(dpa);
    assert_eq!(
        *slots.log.lock().expect("log"),
        vec![(true, WINDOW_AREA, len), (false, WINDOW_AREA, len)]
    );
}
