//! The KVM harness: one VM, one vCPU in long mode, guest RAM from vm-memory, host
//! mappings registered as memory slots and MMIO devices on a vm-device `IoManager`.
//!
//! The guest runs at CPL 3: on paravirtualised KVM (PVM, shadow paging) supervisor-mode
//! guest code runs thousands of times slower, and the demo guest needs no privilege
//! (docs/performance.md).
//!
//! It runs a [`GuestProgram`] to its end, counting every VM exit by the label of the
//! region the exit address falls in (a memory region with exits is not mapped the way
//! it should be), and hands the guest's results back.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use log::{debug, warn};
use vm_device::DeviceMmio;
use vm_device::bus::{MmioAddress, MmioRange};
use vm_device::device_manager::{IoManager, MmioManager};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

use super::guest::{CHECKPOINT_PORT, DONE_PORT, GuestProgram, Record, decode_results};
use super::kvm::{SlotError, SlotTable};
use super::layout::{CODE_GPA, LayoutError, RESULTS_GPA, RESULTS_SIZE, identity_tables};
use cxl_passthrough::runtime::{HookError, MemoryHooks};

/// Exit label for MMIO exits outside every registered region.
pub const UNMAPPED: &str = "unmapped";
/// Exit label for the guest's checkpoint and completion port writes.
pub const PORT_IO: &str = "port-io";

/// Most VM exits one run may take before the harness gives up on the guest.
pub const MAX_EXITS: u64 = 50_000_000;

/// Why the harness failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// This build is not for x86-64 (see [`super::unsupported_arch`]).
    #[error("{0}")]
    UnsupportedArch(String),
    /// /dev/kvm is missing or unusable.
    #[error("KVM is not available ({0}): the demo needs /dev/kvm (read-write) on an x86-64 host")]
    NoKvm(kvm_ioctls::Error),
    /// A KVM ioctl failed.
    #[error("{op} failed")]
    Kvm {
        /// What was attempted.
        op: &'static str,
        /// The errno.
        source: kvm_ioctls::Error,
    },
    /// Guest RAM could not be set up or accessed.
    #[error("guest RAM: {0}")]
    Ram(String),
    /// A memory slot could not be changed.
    #[error(transparent)]
    Slot(#[from] SlotError),
    /// An MMIO range could not be registered.
    #[error("MMIO region {label} at {gpa:#x}: {why}")]
    Mmio {
        /// Region label.
        label: String,
        /// Base.
        gpa: u64,
        /// Why.
        why: String,
    },
    /// A label is used twice, or unknown.
    #[error("region label {0:?} is already used or unknown")]
    Label(String),
    /// The page tables cannot cover the regions.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The guest stopped in an unexpected way.
    #[error("guest stopped: {0}")]
    Guest(String),
    /// The checkpoint handler failed.
    #[error("checkpoint {id}: {why}")]
    Checkpoint {
        /// Checkpoint id.
        id: u8,
        /// The handler's error.
        why: String,
    },
}

/// Host memory to map into the guest.
pub struct MemoryRegion {
    /// Label for exit accounting and [`SlotControl`].
    pub label: String,
    /// Guest physical base (page aligned).
    pub gpa: u64,
    /// The host mapping (its size is the region size).
    pub mapping: Arc<MmapRegion>,
}

/// An MMIO device to trap.
pub struct MmioRegion {
    /// Label for exit accounting.
    pub label: String,
    /// Guest physical base.
    pub gpa: u64,
    /// Size.
    pub size: u64,
    /// The handler (offsets relative to `gpa`).
    pub device: Arc<dyn DeviceMmio + Send + Sync>,
}

#[derive(Debug, Clone)]
struct Labeled {
    label: String,
    range: Range<u64>,
    slot: Option<u32>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// VM exits per region label ([`UNMAPPED`], [`PORT_IO`] included). Every registered
    /// region has an entry, zero if it caused no exit.
    pub exits: BTreeMap<String, u64>,
    /// One record per program step.
    pub records: Vec<Record>,
    /// Per step: its timing samples (empty for steps without any).
    pub samples: Vec<Vec<u64>>,
    /// The guest reached the end of its program.
    pub finished: bool,
}

/// Lets a checkpoint handler take memory regions away from the guest and give them back.
pub struct SlotControl<'a> {
    slots: &'a mut SlotTable,
    regions: &'a [Labeled],
}

impl<'a> SlotControl<'a> {
    /// Unmaps (`false`) or maps again (`true`) the memory region labelled `label`.
    pub fn set_mapped(&mut self, label: &str, mapped: bool) -> Result<(), HarnessError> {
        let slot = self
            .regions
            .iter()
            .find(|r| r.label == label)
            .and_then(|r| r.slot)
            .ok_or_else(|| HarnessError::Label(label.into()))?;
        Ok(self.slots.set_active(slot, mapped)?)
    }

    /// Whether the memory region labelled `label` is mapped.
    pub fn is_mapped(&self, label: &str) -> bool {
        self.regions
            .iter()
            .find(|r| r.label == label)
            .and_then(|r| r.slot)
            .is_some_and(|s| self.slots.is_active(s))
    }

    /// [`MemoryHooks`] that unmap the regions `labels` on quiesce and map them on restore.
    pub fn hooks<'s>(&'s mut self, labels: &'s [String]) -> LabelHooks<'s, 'a> {
        LabelHooks { ctl: self, labels }
    }
}

/// [`MemoryHooks`] over a set of memory regions; see [`SlotControl::hooks`].
pub struct LabelHooks<'s, 'a> {
    ctl: &'s mut SlotControl<'a>,
    labels: &'s [String],
}

impl MemoryHooks for LabelHooks<'_, '_> {
    fn quiesce(&mut self) -> Result<(), HookError> {
        for l in self.labels {
            self.ctl.set_mapped(l, false).map_err(HookError::new)?;
        }
        Ok(())
    }
    fn restore(&mut self) -> Result<(), HookError> {
        for l in self.labels {
            self.ctl.set_mapped(l, true).map_err(HookError::new)?;
        }
        Ok(())
    }
}

/// A VM with one vCPU.
pub struct Harness {
    vcpu: VcpuFd,
    slots: SlotTable,
    ram: GuestMemoryMmap,
    io: IoManager,
    regions: Vec<Labeled>,
    _vm: Arc<VmFd>,
    _kvm: Kvm,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("regions", &self.regions)
            .finish()
    }
}

fn kvm_err(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> HarnessError {
    move |source| HarnessError::Kvm { op, source }
}

/// Fails with [`HarnessError::UnsupportedArch`] when this build is not for x86-64.
fn check_arch() -> Result<(), HarnessError> {
    super::unsupported_arch().map_or(Ok(()), |why| Err(HarnessError::UnsupportedArch(why)))
}

/// Checks that this build is for x86-64 ([`HarnessError::UnsupportedArch`] otherwise) and
/// that /dev/kvm can be opened ([`HarnessError::NoKvm`] otherwise).
pub fn check_kvm() -> Result<(), HarnessError> {
    check_arch()?;
    Kvm::new().map(drop).map_err(HarnessError::NoKvm)
}

impl Harness {
    /// Opens /dev/kvm, creates the VM, its vCPU and `ram_size` bytes of guest RAM at 0
    /// (label `ram`). Fails with [`HarnessError::UnsupportedArch`] on any host but x86-64.
    pub fn new(ram_size: u64) -> Result<Self, HarnessError> {
        check_arch()?;
        let kvm = Kvm::new().map_err(HarnessError::NoKvm)?;
        let vm = Arc::new(kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?);
        let size = usize::try_from(ram_size).map_err(|_| HarnessError::Ram("too large".into()))?;
        let mapping =
            Arc::new(MmapRegion::new(size).map_err(|e| HarnessError::Ram(e.to_string()))?);
        let region = GuestRegionMmap::with_arc(mapping.clone(), GuestAddress(0))
            .ok_or_else(|| HarnessError::Ram("region wraps".into()))?;
        let ram = GuestMemoryMmap::from_regions(vec![region])
            .map_err(|e| HarnessError::Ram(e.to_string()))?;
        let vcpu = vm.create_vcpu(0).map_err(kvm_err("KVM_CREATE_VCPU"))?;
        let mut h = Self {
            vcpu,
            slots: SlotTable::new(vm.clone()),
            ram,
            io: IoManager::new(),
            regions: Vec::new(),
            _vm: vm,
            _kvm: kvm,
        };
        h.add_memory(MemoryRegion {
            label: "ram".into(),
            gpa: 0,
            mapping,
        })?;
        Ok(h)
    }

    fn claim(&mut self, label: &str, gpa: u64, size: u64) -> Result<Range<u64>, HarnessError> {
        if self.regions.iter().any(|r| r.label == label) {
            return Err(HarnessError::Label(label.into()));
        }
        let end = gpa.checked_add(size).ok_or_else(|| HarnessError::Mmio {
            label: label.into(),
            gpa,
            why: "range overflows".into(),
        })?;
        if let Some(o) = self
            .regions
            .iter()
            .find(|r| gpa < r.range.end && r.range.start < end)
        {
            return Err(HarnessError::Mmio {
                label: label.into(),
                gpa,
                why: format!("overlaps {}", o.label),
            });
        }
        Ok(gpa..end)
    }

    /// Maps host memory into the guest.
    pub fn add_memory(&mut self, r: MemoryRegion) -> Result<(), HarnessError> {
        let range = self.claim(&r.label, r.gpa, r.mapping.size() as u64)?;
        let slot = self.slots.add(r.gpa, r.mapping)?;
        debug!(
            "demo: memory {} at {:#x}..{:#x} (slot {slot})",
            r.label, range.start, range.end
        );
        self.regions.push(Labeled {
            label: r.label,
            range,
            slot: Some(slot),
        });
        Ok(())
    }

    /// Traps an MMIO range.
    pub fn add_mmio(&mut self, r: MmioRegion) -> Result<(), HarnessError> {
        let range = self.claim(&r.label, r.gpa, r.size)?;
        let bus = MmioRange::new(MmioAddress(r.gpa), r.size).map_err(|e| HarnessError::Mmio {
            label: r.label.clone(),
            gpa: r.gpa,
            why: format!("{e:?}"),
        })?;
        self.io
            .register_mmio(bus, r.device)
            .map_err(|e| HarnessError::Mmio {
                label: r.label.clone(),
                gpa: r.gpa,
                why: format!("{e:?}"),
            })?;
        debug!(
            "demo: mmio {} at {:#x}..{:#x}",
            r.label, range.start, range.end
        );
        self.regions.push(Labeled {
            label: r.label,
            range,
            slot: None,
        });
        Ok(())
    }

    fn label_of(&self, gpa: u64) -> &str {
        self.regions
            .iter()
            .find(|r| r.range.contains(&gpa))
            .map_or(UNMAPPED, |r| r.label.as_str())
    }

    /// Loads `program` and its page tables, runs it to the end, calling `on_checkpoint`
    /// at each [`Step::Checkpoint`](super::guest::Step::Checkpoint).
    pub fn run(
        &mut self,
        program: &GuestProgram,
        on_checkpoint: &mut dyn FnMut(u8, &mut SlotControl<'_>) -> Result<(), String>,
    ) -> Result<RunOutcome, HarnessError> {
        self.load(program)?;
        self.setup_vcpu()?;
        let mut exits: BTreeMap<String, u64> = self
            .regions
            .iter()
            .map(|r| (r.label.clone(), 0))
            .chain([(UNMAPPED.to_string(), 0), (PORT_IO.to_string(), 0)])
            .collect();
        let mut total = 0u64;
        let finished = loop {
            total += 1;
            if total > MAX_EXITS {
                return Err(HarnessError::Guest(format!(
                    "more than {MAX_EXITS} VM exits"
                )));
            }
            let exit = self.vcpu.run().map_err(kvm_err("KVM_RUN"))?;
            let (label, checkpoint) = match exit {
                VcpuExit::MmioRead(addr, data) => {
                    if self.io.mmio_read(MmioAddress(addr), data).is_err() {
                        data.fill(0xFF);
                    }
                    (self.label_of(addr).to_string(), None)
                }
                VcpuExit::MmioWrite(addr, data) => {
                    let _ = self.io.mmio_write(MmioAddress(addr), data);
                    (self.label_of(addr).to_string(), None)
                }
                VcpuExit::IoOut(port, data) if port == CHECKPOINT_PORT => (
                    PORT_IO.to_string(),
                    Some(data.first().copied().unwrap_or(0)),
                ),
                VcpuExit::IoOut(DONE_PORT, _) => {
                    *exits.entry(PORT_IO.into()).or_default() += 1;
                    break true;
                }
                VcpuExit::IoOut(port, _) | VcpuExit::IoIn(port, _) => {
                    warn!("demo: unexpected port access {port:#x}");
                    (PORT_IO.to_string(), None)
                }
                VcpuExit::Hlt => break false,
                other => {
                    let what = format!("{other:?}");
                    return Err(HarnessError::Guest(format!(
                        "{what} at {}",
                        self.guest_ip()
                    )));
                }
            };
            *exits.entry(label).or_default() += 1;
            if let Some(id) = checkpoint {
                let mut ctl = SlotControl {
                    slots: &mut self.slots,
                    regions: &self.regions,
                };
                on_checkpoint(id, &mut ctl).map_err(|why| HarnessError::Checkpoint { id, why })?;
            }
        };
        let mut bytes = vec![0u8; RESULTS_SIZE as usize];
        self.ram
            .read_slice(&mut bytes, GuestAddress(RESULTS_GPA))
            .map_err(|e| HarnessError::Ram(e.to_string()))?;
        let (records, done) = decode_results(&bytes, program.steps.len());
        let samples = program
            .samples
            .iter()
            .map(|area| {
                let Some((gpa, n)) = *area else {
                    return Ok(Vec::new());
                };
                let mut raw = vec![0u8; n * 8];
                self.ram
                    .read_slice(&mut raw, GuestAddress(gpa))
                    .map_err(|e| HarnessError::Ram(e.to_string()))?;
                Ok(raw
                    .chunks_exact(8)
                    .map(|q| u64::from_le_bytes([q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]]))
                    .collect())
            })
            .collect::<Result<_, HarnessError>>()?;
        Ok(RunOutcome {
            exits,
            records,
            samples,
            finished: finished && done,
        })
    }

    fn load(&mut self, program: &GuestProgram) -> Result<(), HarnessError> {
        let ranges: Vec<Range<u64>> = self.regions.iter().map(|r| r.range.clone()).collect();
        let ram_err = |e: vm_memory::GuestMemoryError| HarnessError::Ram(e.to_string());
        for (gpa, page) in identity_tables(&ranges)? {
            self.ram
                .write_slice(&page, GuestAddress(gpa))
                .map_err(ram_err)?;
        }
        self.ram
            .write_slice(&vec![0u8; RESULTS_SIZE as usize], GuestAddress(RESULTS_GPA))
            .map_err(ram_err)?;
        self.ram
            .write_slice(&program.code, GuestAddress(CODE_GPA))
            .map_err(ram_err)
    }

    /// Where the guest stopped, for error messages.
    #[cfg(target_arch = "x86_64")]
    fn guest_ip(&self) -> String {
        let rip = self.vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
        format!("rip {rip:#x}")
    }

    /// Where the guest stopped: unknown off x86-64 (no VM runs there).
    #[cfg(not(target_arch = "x86_64"))]
    fn guest_ip(&self) -> String {
        "an unknown address".into()
    }

    #[cfg(target_arch = "x86_64")]
    fn setup_vcpu(&mut self) -> Result<(), HarnessError> {
        // CPUID first, as every VMM does: without it the vCPU's guest CPUID is empty, and
        // a KVM that derives reserved CR4/EFER bits from it (7.3 under nested SVM, in the
        // real-kernel lab) refuses the long-mode registers below with EINVAL.
        let cpuid = self
            ._kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
        self.vcpu
            .set_cpuid2(&cpuid)
            .map_err(kvm_err("KVM_SET_CPUID2"))?;
        let mut sregs = self.vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        let code = kvm_bindings::kvm_segment {
            base: 0,
            limit: 0xFFFF_FFFF,
            selector: SEL_CODE | RPL_USER,
            type_: SEG_CODE_XRA,
            present: 1,
            dpl: RPL_USER as u8,
            db: 0,
            s: 1,
            l: 1,
            g: 1,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        let data = kvm_bindings::kvm_segment {
            selector: SEL_DATA | RPL_USER,
            type_: SEG_DATA_RWA,
            db: 1,
            l: 0,
            ..code
        };
        sregs.cs = code;
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
        sregs.cr3 = super::layout::PML4_GPA;
        sregs.cr4 |= CR4_PAE;
        sregs.cr0 |= CR0_PE | CR0_PG;
        sregs.efer |= EFER_LME | EFER_LMA;
        self.vcpu
            .set_sregs(&sregs)
            .map_err(kvm_err("KVM_SET_SREGS"))?;
        let regs = kvm_bindings::kvm_regs {
            rip: CODE_GPA,
            rsp: CODE_GPA,
            rflags: RFLAGS_RESERVED | RFLAGS_IOPL3,
            ..Default::default()
        };
        self.vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))
    }

    /// Off x86-64 there is no long-mode vCPU to set up ([`Harness::new`] refuses first).
    #[cfg(not(target_arch = "x86_64"))]
    fn setup_vcpu(&mut self) -> Result<(), HarnessError> {
        check_arch()
    }
}

#[cfg(target_arch = "x86_64")]
use x86::*;

/// The x86-64 vCPU state of the demo guest: flat segments, long mode, CPL 3.
#[cfg(target_arch = "x86_64")]
mod x86 {
    /// GDT selector of the flat 64-bit code segment (the GDT itself is never loaded).
    pub(super) const SEL_CODE: u16 = 0x08;
    /// GDT selector of the flat data segment.
    pub(super) const SEL_DATA: u16 = 0x10;
    /// Segment type: code, execute/read, accessed.
    pub(super) const SEG_CODE_XRA: u8 = 0b1011;
    /// Segment type: data, read/write, accessed.
    pub(super) const SEG_DATA_RWA: u8 = 0b0011;
    pub(super) const CR0_PE: u64 = 1;
    pub(super) const CR0_PG: u64 = 1 << 31;
    pub(super) const CR4_PAE: u64 = 1 << 5;
    pub(super) const EFER_LME: u64 = 1 << 8;
    pub(super) const EFER_LMA: u64 = 1 << 10;
    /// RFLAGS bit 1 is always set; interrupts stay off.
    pub(super) const RFLAGS_RESERVED: u64 = 1 << 1;
    /// IOPL 3: the user-mode guest may use `out` for its checkpoints.
    pub(super) const RFLAGS_IOPL3: u64 = 3 << 12;
    /// Requested/descriptor privilege level 3.
    pub(super) const RPL_USER: u16 = 3;
}
