//! The runtime on a v4 device: what the guest sees through the overlay (its own
//! decoder at the window, the capability array from the BAR), what stays on the device
//! (the host-committed decoder, untouched), and the v4-only probe and boot errors.
#![allow(clippy::unwrap_used)]

mod runtime_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cxl_passthrough::backend::sim::{BarLayout, ConfigOverride, Fault, InfoTarget, OffsetLayout};
use cxl_passthrough::backend::sim::{CapChainFault, SimDevice};
use cxl_passthrough::backend::{Backend, MmapSource, ResetKind};
use cxl_passthrough::regs::hdm::{DecoderReg, HDM_GLOBAL_CONTROL};
use cxl_passthrough::runtime::probe::{ProbeError, probe};
use cxl_passthrough::runtime::{DeviceError, NoHooks};
use cxl_passthrough::uapi::{RevisionChoice, UapiRevision};
use runtime_common::*;

/// Block offset of the simulator's HDM block (CM + 0x200).
const HDM: u64 = 0x1200;

/// The simulator with some dwords of the device fd replaced (a hostile kernel).
struct Patched {
    sim: Arc<SimDevice>,
    dwords: Mutex<HashMap<u64, u32>>,
}

impl Backend for Patched {
    fn device_info(&self) -> cxl_passthrough::backend::Result<Vec<u8>> {
        self.sim.device_info()
    }
    fn region_info(&self, index: u32) -> cxl_passthrough::backend::Result<Vec<u8>> {
        self.sim.region_info(index)
    }
    fn read(
        &self,
        region: u64,
        off: u64,
        buf: &mut [u8],
    ) -> cxl_passthrough::backend::Result<usize> {
        let n = self.sim.read(region, off, buf)?;
        if let (Some(v), 4) = (self.dwords.lock().unwrap().get(&(region + off)), buf.len()) {
            buf.copy_from_slice(&v.to_le_bytes());
        }
        Ok(n)
    }
    fn write(&self, region: u64, off: u64, buf: &[u8]) -> cxl_passthrough::backend::Result<usize> {
        self.sim.write(region, off, buf)
    }
    fn mmap_source(&self, region: u64) -> cxl_passthrough::backend::Result<MmapSource<'_>> {
        self.sim.mmap_source(region)
    }
    fn reset(&self, kind: ResetKind) -> cxl_passthrough::backend::Result<()> {
        self.sim.reset(kind)
    }
}

fn v4(layout: BarLayout) -> Arc<SimDevice> {
    sim(UapiRevision::V4, layout, OffsetLayout::Kernel)
}

fn guest32(dev: &cxl_passthrough::runtime::CxlDevice, off: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.overlay().read(off, &mut b);
    u32::from_le_bytes(b)
}

#[test]
fn the_guest_sees_its_decoder_and_the_device_keeps_the_host_one() {
    for layout in BAR_LAYOUTS {
        for kernel in [false, true] {
            let s = v4(layout);
            let b = if kernel {
                kernel_over_sim(s.clone())
            } else {
                s.clone() as Arc<dyn Backend>
            };
            {
                let (dev, desc) = device(b);
                assert_eq!(desc.revision, UapiRevision::V4);
                assert_eq!(
                    (desc.comp_regs_base_in_block, desc.hdm.block_offset),
                    (HDM, HDM)
                );
                assert_eq!(desc.hdm.decoder_count, 1);
                let hw_before = s.hw_hdm();
                let d = dev.boot().unwrap();
                assert!(d.committed && d.locked && d.hdm_enabled, "{layout:?}");
                assert_eq!(d.base, WINDOW_BASE);
                // The guest: BASE = window, the CXL capability header from the BAR.
                let lo = guest32(&dev, HDM + DecoderReg::BaseLo.at(0));
                let hi = guest32(&dev, HDM + DecoderReg::BaseHi.at(0));
                assert_eq!(u64::from(hi) << 32 | u64::from(lo), WINDOW_BASE);
                assert_eq!(guest32(&dev, 0x1000) & 0xFFFF, 1, "CM capability header");
                // Guest writes to the locked decoder are dropped; decoding stays on.
                dev.overlay().write(
                    HDM + DecoderReg::BaseLo.at(0),
                    &0x1000_0000u32.to_le_bytes(),
                );
                dev.overlay()
                    .write(HDM + HDM_GLOBAL_CONTROL, &0u32.to_le_bytes());
                assert_eq!(guest32(&dev, HDM + DecoderReg::BaseLo.at(0)), lo);
                assert_eq!(guest32(&dev, HDM + HDM_GLOBAL_CONTROL) & 2, 2);
                // The device's decoder: never written (v4 absorbs writes anyway).
                assert_eq!(s.hw_hdm(), hw_before);
                // Memory Space was enabled for the device memory check.
                let mut b = [0u8; 2];
                s.read(desc.config.file_offset, 4, &mut b).unwrap();
                assert_eq!(u16::from_le_bytes(b) & 2, 2);
                // A reset wipes device memory; the view is re-seeded and re-locked.
                s.dpa_host_write(0, b"v4").unwrap();
                let d = dev.reset(ResetKind::Device, &mut NoHooks).unwrap();
                assert_eq!(d.base, WINDOW_BASE);
                let mut m = [0xFFu8; 2];
                s.dpa_host_read(0, &mut m).unwrap();
                assert_eq!(m, [0, 0]);
            }
        }
    }
}

#[test]
fn a_live_decoder_that_does_not_back_the_memory_refuses_boot() {
    let s = v4(BarLayout::End);
    let comp = s.region_offset(10).unwrap();
    let p = Arc::new(Patched {
        sim: s.clone(),
        dwords: Mutex::new(HashMap::new()),
    });
    let (dev, _) = device(p.clone());
    // CTRL without COMMITTED, then a SIZE other than the memory's.
    for (at, v) in [
        (DecoderReg::Ctrl.at(0), 0u32),
        (DecoderReg::SizeHi.at(0), 7),
    ] {
        p.dwords.lock().unwrap().insert(comp + at, v);
        let e = dev.boot().unwrap_err();
        assert!(matches!(e, DeviceError::HwDecoder { .. }), "{e}");
        p.dwords.lock().unwrap().clear();
    }
    dev.boot().unwrap();
}

#[test]
fn hostile_v4_answers_are_typed_probe_errors() {
    // Two decoders in the HDM capability the kernel reads live.
    let s = v4(BarLayout::Middle);
    let comp = s.region_offset(10).unwrap();
    let two = s.hw_hdm().cap.into_bits() & !0xF | 1;
    let p = Patched {
        sim: s.clone(),
        dwords: Mutex::new(HashMap::from([(comp, two)])),
    };
    assert!(matches!(
        probe(&p, RevisionChoice::Auto, PAGE),
        Err(ProbeError::DecoderCount(2))
    ));
    // The capability array (read through the BAR) points elsewhere.
    let bar = s.region_offset(s.config().component_bar.into()).unwrap();
    let comp_off = s.config().component_offset();
    let entry = 0x1000 + 8;
    let mut b = [0u8; 4];
    s.read(bar, comp_off + entry, &mut b).unwrap();
    let moved = (u32::from_le_bytes(b) & 0x000F_FFFF) | 0x300 << 20;
    let p = Patched {
        sim: s.clone(),
        dwords: Mutex::new(HashMap::from([(bar + comp_off + entry, moved)])),
    };
    assert!(matches!(
        probe(&p, RevisionChoice::Auto, PAGE),
        Err(ProbeError::HdmMismatch {
            walked: 0x1300,
            kernel: HDM
        })
    ));
    // The Register Locator names another BAR.
    let over = Arc::new(ConfigOverride::new(s.clone(), s.region_offset(7).unwrap()));
    let mut img = over.honest_config().unwrap();
    let rl = usize::from(cxl_passthrough::backend::sim::REGLOC_DVSEC) + 0x0C;
    img[rl] = (img[rl] & !7) | 4;
    over.serve(Some(img), 0);
    assert!(matches!(
        probe(over.as_ref(), RevisionChoice::Auto, PAGE),
        Err(ProbeError::RegisterLocatorMismatch { .. })
    ));
    // A DVSEC without CXL reset (or CXL.cache): v4 binds no such device.
    let over = Arc::new(ConfigOverride::new(s.clone(), s.region_offset(7).unwrap()));
    let honest = over.honest_config().unwrap();
    let cap = usize::from(cxl_passthrough::backend::sim::DEVICE_DVSEC) + 0x0A;
    for (bit, name) in [(7u8, "CXL_Reset_Capable"), (0, "Cache_Capable")] {
        let mut img = honest.clone();
        img[cap] &= !(1 << bit);
        over.serve(Some(img), 0);
        match probe(over.as_ref(), RevisionChoice::Auto, PAGE) {
            Err(ProbeError::V4Capability { missing, .. }) => assert_eq!(missing, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    // A broken capability chain on the COMP_REGS region.
    for kind in [
        CapChainFault::Loop,
        CapChainFault::NextOutOfBounds,
        CapChainFault::Truncated,
    ] {
        let s = v4(BarLayout::End);
        s.inject(Fault::MalformedCapChain {
            target: InfoTarget::Region(10),
            kind,
        });
        assert!(
            matches!(
                probe(s.as_ref(), RevisionChoice::Auto, PAGE),
                Err(ProbeError::Uapi(_))
            ),
            "{kind:?}"
        );
    }
    // Forced v2/v3 on a v4 kernel: the capability they need is missing.
    let s = v4(BarLayout::End);
    for r in [UapiRevision::V2, UapiRevision::V3] {
        assert!(matches!(
            probe(s.as_ref(), RevisionChoice::Force(r), PAGE),
            Err(ProbeError::Uapi(
                cxl_passthrough::uapi::UapiError::CxlCapMissing { .. }
            ))
        ));
    }
    assert!(probe(s.as_ref(), RevisionChoice::Force(UapiRevision::V4), PAGE).is_ok());
}
