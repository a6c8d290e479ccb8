//! The demo scenario: backends → probe → plan → boot-time lock → mappings → VM → guest
//! program → host checks → [`DemoReport`].

use std::sync::{Arc, Mutex};

use cxl_acpi::{Chbcr, chbcr};
use vm_memory::MmapRegion;

use super::guest::{GuestError, Step, assemble};
use super::harness::{
    Harness, HarnessError, MemoryRegion, MmioRegion, SlotControl, UNMAPPED, check_kvm,
};
use super::layout::{
    BAR_STRIDE, CHBCR_GPA, NOOP_GPA, NOOP_SIZE, RAM_BUFFER_GPA, WINDOWS_GPA, WINDOWS_LEN, bar_gpa,
    ram_size,
};
use super::memcheck::{PatternCheck, verify_all, write_sparse, write_u64};
use super::report::{Check, DemoReport, ResetReport, Verdict};
use super::stubs::NoopDevice;
use super::verify::{ResetSeen, device_checks};
use cxl_passthrough::backend::{Backend, ResetKind};
use cxl_passthrough::errors::Chain;
use cxl_passthrough::plan::MappedArea;
use cxl_passthrough::regs::hdm::DecoderReg;
use cxl_passthrough::runtime::{CxlDevice, DecoderState, HookError, MemoryHooks};
use cxl_passthrough::vmm::{
    CxlSegment, MmioHandler, MmioPart, MmioRegistry, Platform, RevisionChoice, VmDeviceMmio,
    VmmError, register_component_bar,
};

/// Checkpoint id at which the host resets device 0.
pub const RESET_CHECKPOINT: u8 = 1;

/// A device to put in the VM.
pub struct DemoDevice {
    /// Name used in labels and the report (`dev0`, ...).
    pub name: String,
    /// Its backend.
    pub backend: Arc<dyn Backend>,
}

/// Knobs of the scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoOptions {
    /// Bytes per timed bandwidth pass (window and RAM alike).
    pub bandwidth_bytes: u64,
    /// Timed passes per bandwidth measurement (the fastest counts).
    pub passes: u32,
    /// Trapped loads per trapped-access measurement.
    pub trap_accesses: u32,
    /// Reset device 0 in the middle of the guest's work.
    pub reset_midway: bool,
    /// Bandwidth goal, window / RAM. Reported as met or missed; it fails the run only
    /// with `strict_bandwidth`.
    pub bandwidth_goal: f64,
    /// Make a missed bandwidth goal a failed check (for quiet hosts and perf runs).
    pub strict_bandwidth: bool,
    /// Host page size.
    pub page_size: u64,
    /// The directly mapped BAR areas are scratch memory (the simulator): the host and
    /// the guest write test values there. Leave false for real devices, whose BAR holds
    /// registers: the guest then only reads.
    pub write_bar: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            bandwidth_bytes: 8 << 20,
            passes: 64,
            trap_accesses: 200,
            reset_midway: false,
            bandwidth_goal: 0.98,
            strict_bandwidth: false,
            page_size: 4096,
            write_bar: false,
        }
    }
}

/// Why the demo could not run (as opposed to a failed check, which is in the report).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// No device given.
    #[error("no device to run the demo with")]
    NoDevices,
    /// Setting a device up (probe, window, boot-time lock, mappings, host bridge,
    /// MMIO registration) failed.
    #[error("{name}")]
    Setup {
        /// Device.
        name: String,
        /// Error.
        source: VmmError,
    },
    /// The device does not fit the demo's guest layout.
    #[error("{name}: {why}")]
    Layout {
        /// Device.
        name: String,
        /// What does not fit.
        why: String,
    },
    /// The VM failed.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The guest program could not be built.
    #[error(transparent)]
    Guest(#[from] GuestError),
    /// Backend factory failed (the device could not be opened or created).
    #[cfg(test)]
    #[error("{0}")]
    Open(String),
}

pub(super) struct Prepared {
    pub(super) name: String,
    pub(super) dev: CxlDevice,
    pub(super) dpa: Arc<MmapRegion>,
    pub(super) sparse: Vec<(MappedArea, Arc<MmapRegion>)>,
    pub(super) bar_gpa: u64,
    pub(super) chbcr_gpa: u64,
    pub(super) chbcr: Arc<Mutex<Chbcr>>,
    pub(super) decoder: DecoderState,
    pub(super) host_seed: u64,
    pub(super) guest_seed: u64,
}

impl Prepared {
    pub(super) fn label(&self, what: &str) -> String {
        format!("{}.{what}", self.name)
    }
    pub(super) fn memory_labels(&self) -> Vec<String> {
        let mut v = vec![self.label("window")];
        v.extend((0..self.sparse.len()).map(|k| self.label(&format!("bar-mapped{k}"))));
        v
    }
}

/// Step indices of one device's part of the program.
#[derive(Default)]
pub(super) struct DevSteps {
    pub(super) decoder: usize,
    pub(super) chbcr: usize,
    pub(super) host_pattern: usize,
    pub(super) touch: Option<usize>,
    pub(super) bandwidth: Option<usize>,
    pub(super) calibration: Option<usize>,
    pub(super) fill: usize,
    pub(super) trap: usize,
    pub(super) after_reset: Option<(usize, usize)>,
}

fn prepare(i: usize, d: DemoDevice, platform: &mut Platform) -> Result<Prepared, DemoError> {
    let name = d.name;
    let setup_err = |source| DemoError::Setup {
        name: name.clone(),
        source,
    };
    let (dev, decoder) = platform
        .boot_device(d.backend, RevisionChoice::Auto)
        .map_err(setup_err)?;
    if dev.desc().bar.size > BAR_STRIDE {
        return Err(DemoError::Layout {
            name,
            why: format!(
                "component BAR of {:#x} bytes is larger than the demo's {BAR_STRIDE:#x}",
                dev.desc().bar.size
            ),
        });
    }
    let dev_err = |source| setup_err(VmmError::Device(source));
    let dpa = Arc::new(dev.map_dpa().map_err(dev_err)?);
    let sparse = dev
        .map_sparse()
        .map_err(dev_err)?
        .into_iter()
        .map(|(a, m)| (a, Arc::new(m)))
        .collect();
    let n = i as u64;
    let chbcr_gpa = CHBCR_GPA + n * Chbcr::SIZE;
    let chbcr = host_bridge(platform, &dev, i, chbcr_gpa).map_err(setup_err)?;
    Ok(Prepared {
        name,
        dev,
        dpa,
        sparse,
        bar_gpa: bar_gpa(n),
        chbcr_gpa,
        chbcr: Arc::new(Mutex::new(chbcr)),
        decoder,
        host_seed: 0x4057_0000_0000_0000 | n << 32,
        guest_seed: 0x6E57_0000_0000_0000 | n << 32,
    })
}

/// The host bridge of device `i` (segment `i + 1`, its own CFMWS window): checks the
/// topology below the root port a VMM would emulate (the demo has no PCI hierarchy, so
/// no root port answers the host-bridge decoder's target) and builds the CHBCR.
fn host_bridge(
    platform: &mut Platform,
    dev: &CxlDevice,
    i: usize,
    chbcr_gpa: u64,
) -> Result<Chbcr, VmmError> {
    let plan = Platform::plan_topology(dev)?;
    let bridge = CxlSegment {
        segment: u16::try_from(i + 1).unwrap_or(u16::MAX),
        mem32: (0, 0),
        mem64: (0, 0),
        chbcr_base: chbcr_gpa,
        slot_gsis: Vec::new(),
    }
    .host_bridge();
    platform.add_host_bridge(bridge, &plan)
}

/// The harness as the facade's MMIO bus for one device (labels `<device>.<part>`).
struct DeviceMmio<'h> {
    h: &'h mut Harness,
    p: &'h Prepared,
}

impl MmioRegistry for DeviceMmio<'_> {
    type Error = HarnessError;
    fn register(
        &mut self,
        part: MmioPart,
        gpa: u64,
        size: u64,
        handler: Arc<dyn MmioHandler>,
    ) -> Result<(), HarnessError> {
        let label = match part {
            MmioPart::ComponentRegisters => self.p.label("comp-regs"),
            MmioPart::ForwardedBar(k) => self.p.label(&format!("bar-trapped{k}")),
        };
        self.h.add_mmio(MmioRegion {
            label,
            gpa,
            size,
            device: Arc::new(VmDeviceMmio(handler)),
        })
    }
}

fn attach(h: &mut Harness, p: &Prepared) -> Result<(), DemoError> {
    h.add_memory(MemoryRegion {
        label: p.label("window"),
        gpa: p.dev.window().base,
        mapping: p.dpa.clone(),
    })?;
    for (k, (area, m)) in p.sparse.iter().enumerate() {
        h.add_memory(MemoryRegion {
            label: p.label(&format!("bar-mapped{k}")),
            gpa: p.bar_gpa + area.offset,
            mapping: m.clone(),
        })?;
    }
    register_component_bar(&p.dev, p.bar_gpa, &mut DeviceMmio { h, p }).map_err(|source| {
        DemoError::Setup {
            name: p.name.clone(),
            source,
        }
    })?;
    h.add_mmio(MmioRegion {
        label: p.label("chbcr"),
        gpa: p.chbcr_gpa,
        size: Chbcr::SIZE,
        device: p.chbcr.clone(),
    })?;
    Ok(())
}

fn decoder_regs_gpa(p: &Prepared) -> u64 {
    p.bar_gpa
        + p.dev.bar_plan().overlay.start
        + p.dev.desc().hdm.block_offset
        + DecoderReg::BaseLo.at(0)
}

fn program(devs: &[Prepared], opts: &DemoOptions) -> (Vec<Step>, Vec<DevSteps>) {
    let mut steps = Vec::new();
    let mut push = |s: Step| {
        steps.push(s);
        steps.len() - 1
    };
    let mut idx = Vec::new();
    for (i, p) in devs.iter().enumerate() {
        let w = p.dev.window().base;
        let size = p.decoder.size;
        let dpa = p.dpa.size() as u64 & !7;
        let check = Step::CheckDecoder {
            regs_gpa: decoder_regs_gpa(p),
            base: w,
            size,
        };
        let mut s = DevSteps {
            decoder: push(check.clone()),
            chbcr: push(Step::CheckDecoder {
                regs_gpa: p.chbcr_gpa + chbcr::HDM_OFFSET + DecoderReg::BaseLo.at(0),
                base: w,
                size,
            }),
            host_pattern: push(Step::VerifyPattern {
                gpa: w,
                len: dpa,
                stride: 4096,
                seed: p.host_seed,
            }),
            ..DevSteps::default()
        };
        if let Some((area, _)) = p.sparse.first() {
            s.touch = Some(push(Step::Touch {
                gpa: p.bar_gpa + area.offset,
                value: opts.write_bar.then_some(p.guest_seed),
            }));
        }
        let bw = opts.bandwidth_bytes.min(dpa) & !31;
        if bw > 0 {
            s.calibration = Some(push(Step::Bandwidth {
                a: RAM_BUFFER_GPA,
                b: RAM_BUFFER_GPA + opts.bandwidth_bytes,
                len: bw,
                passes: opts.passes,
            }));
            s.bandwidth = Some(push(Step::Bandwidth {
                a: RAM_BUFFER_GPA,
                b: w,
                len: bw,
                passes: opts.passes,
            }));
        }
        s.fill = push(Step::FillPattern {
            gpa: w,
            len: dpa,
            seed: p.guest_seed,
        });
        s.trap = push(Step::TrapCost {
            a: NOOP_GPA,
            b: decoder_regs_gpa(p) + DecoderReg::Ctrl.offset(),
            count: opts.trap_accesses,
            rounds: opts.passes,
        });
        if opts.reset_midway && i == 0 {
            push(Step::Checkpoint(RESET_CHECKPOINT));
            let dec = push(check);
            let fill = push(Step::FillPattern {
                gpa: w,
                len: dpa,
                seed: !p.guest_seed,
            });
            s.after_reset = Some((dec, fill));
        }
        idx.push(s);
    }
    (steps, idx)
}

/// Hooks around the reset: unmap the device memory, and record what the guest would see.
struct ResetHooks<'s, 'a> {
    ctl: &'s mut SlotControl<'a>,
    labels: Vec<String>,
    overlay: Arc<cxl_passthrough::runtime::Overlay>,
    fenced: bool,
    unmapped: bool,
}

impl MemoryHooks for ResetHooks<'_, '_> {
    fn quiesce(&mut self) -> Result<(), HookError> {
        self.ctl.hooks(&self.labels).quiesce()?;
        self.fenced = self.overlay.is_fenced();
        self.unmapped = self.labels.iter().all(|l| !self.ctl.is_mapped(l));
        Ok(())
    }
    fn restore(&mut self) -> Result<(), HookError> {
        self.ctl.hooks(&self.labels).restore()
    }
}

/// Runs the demo on `devices`, calling `progress` with one line per phase.
pub fn run_devices(
    devices: Vec<DemoDevice>,
    opts: &DemoOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<DemoReport, DemoError> {
    if devices.is_empty() {
        return Err(DemoError::NoDevices);
    }
    progress("[kvm] checking /dev/kvm");
    check_kvm()?;
    let opts = DemoOptions {
        bandwidth_bytes: (opts.bandwidth_bytes & !31).max(32),
        passes: opts.passes.max(1),
        trap_accesses: opts.trap_accesses.max(1),
        ..opts.clone()
    };
    let mut platform =
        Platform::new(WINDOWS_GPA, WINDOWS_LEN, opts.page_size).map_err(|source| {
            DemoError::Setup {
                name: "demo".into(),
                source,
            }
        })?;
    let mut devs = Vec::new();
    for (i, d) in devices.into_iter().enumerate() {
        progress(&format!(
            "[probe+lock] {}: probing, planning, locking HDM decoder 0",
            d.name
        ));
        let p = prepare(i, d, &mut platform)?;
        progress(&format!(
            "[probe+lock] {}: decoder 0 locked at {:#x}+{:#x}",
            p.name, p.decoder.base, p.decoder.size
        ));
        let written = write_sparse(&p.dpa, p.dpa.size() as u64, 4096, p.host_seed);
        if opts.write_bar {
            for (area, m) in &p.sparse {
                write_u64(m, 0, p.host_seed ^ area.offset);
            }
        }
        progress(&format!(
            "[map] {}: host pattern written ({written} qwords)",
            p.name
        ));
        devs.push(p);
    }
    progress("[vm] creating the VM, guest RAM, memory slots and MMIO devices");
    let mut h = Harness::new(ram_size(opts.bandwidth_bytes))?;
    h.add_mmio(MmioRegion {
        label: "noop".into(),
        gpa: NOOP_GPA,
        size: NOOP_SIZE,
        device: Arc::new(NoopDevice),
    })?;
    for p in &devs {
        attach(&mut h, p)?;
    }
    let (steps, idx) = program(&devs, &opts);
    let prog = assemble(&steps)?;
    progress(&format!(
        "[guest] running the guest program ({} steps, {} bytes)",
        steps.len(),
        prog.code.len()
    ));
    let mut reset_report: Option<ResetReport> = None;
    let mut pre_reset: Option<PatternCheck> = None;
    let outcome = {
        let Some(first) = devs.first() else {
            return Err(DemoError::NoDevices);
        };
        let mut on_checkpoint = |id: u8, ctl: &mut SlotControl<'_>| -> Result<(), String> {
            if id != RESET_CHECKPOINT {
                return Ok(());
            }
            progress(&format!(
                "[reset] {}: resetting in the middle of guest activity",
                first.name
            ));
            pre_reset = Some(verify_all(
                &first.dpa,
                first.dpa.size() as u64,
                first.guest_seed,
            ));
            let mut hooks = ResetHooks {
                ctl,
                labels: first.memory_labels(),
                overlay: first.dev.overlay(),
                fenced: false,
                unmapped: false,
            };
            let r = first.dev.reset(ResetKind::Device, &mut hooks);
            reset_report = Some(ResetReport {
                fenced_during_reset: hooks.fenced,
                unmapped_during_reset: hooks.unmapped,
                relocked: r.as_ref().ok().map(|d| (*d).into()),
                error: r.as_ref().err().map(|e| Chain(e).to_string()),
            });
            progress(&format!(
                "[reset] {}: {}",
                first.name,
                match &r {
                    Ok(d) => format!("decoder 0 re-locked at {:#x}, guest continues", d.base),
                    Err(e) => format!("failed: {}", Chain(e)),
                }
            ));
            Ok(())
        };
        h.run(&prog, &mut on_checkpoint)?
    };
    progress("[verify] checking the guest's results and the device memory");
    let mut checks = vec![Check::new(
        "guest program finished",
        outcome.finished,
        format!(
            "{} of {} steps done",
            outcome.records.iter().filter(|r| r.done).count(),
            steps.len()
        ),
    )];
    let seen = ResetSeen {
        report: reset_report,
        pre_reset,
    };
    let mut reports = Vec::new();
    for (p, s) in devs.iter().zip(&idx) {
        reports.push(device_checks(p, s, &outcome, &opts, &seen, &mut checks));
    }
    let ram_exits = outcome.exits.get("ram").copied().unwrap_or(0);
    checks.push(Check::new(
        "ram: no VM exits",
        ram_exits == 0,
        format!("{ram_exits} exits"),
    ));
    let unmapped = outcome.exits.get(UNMAPPED).copied().unwrap_or(0);
    checks.push(Check::new(
        "no exits outside registered regions",
        unmapped == 0,
        format!("{unmapped} exits"),
    ));
    let passed = checks.iter().all(|c| c.verdict != Verdict::Fail);
    progress(&format!(
        "[done] {}",
        if passed {
            "all checks passed"
        } else {
            "some checks FAILED"
        }
    ));
    Ok(DemoReport {
        devices: reports,
        exits: outcome.exits,
        checks,
        bandwidth_goal: opts.bandwidth_goal,
        passed,
    })
}
