//! KVM memory slots. `KVM_SET_USER_MEMORY_REGION` is the one unsafe KVM call: the kernel
//! keeps a raw pointer to the host mapping for as long as the slot exists. [`SlotTable`]
//! makes that sound by owning every mapping it registers and deleting every slot before
//! it lets go of them.

use std::sync::Arc;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::MmapRegion;

/// Why a slot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// The slot id is unknown.
    #[error("memory slot {0} does not exist")]
    NoSuchSlot(u32),
    /// The mapping is empty, the range overflows, or it overlaps another slot.
    #[error("memory slot at {gpa:#x} (+{size:#x}): {why}")]
    BadRange {
        /// Guest physical base.
        gpa: u64,
        /// Size.
        size: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// KVM refused.
    #[error("KVM_SET_USER_MEMORY_REGION slot {slot} failed")]
    Kvm {
        /// Slot id.
        slot: u32,
        /// The errno.
        source: kvm_ioctls::Error,
    },
}

struct Slot {
    gpa: u64,
    mapping: Arc<MmapRegion>,
    active: bool,
}

/// Memory slots of one VM, each backed by a host mapping the table keeps alive.
///
/// Slots are never reused: a slot id is its index. Dropping the table deletes every
/// active slot first; a mapping whose slot could not be deleted is leaked rather than
/// unmapped under the guest.
pub struct SlotTable {
    vm: Arc<VmFd>,
    slots: Vec<Slot>,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.slots
                    .iter()
                    .map(|s| (s.gpa, s.mapping.size(), s.active)),
            )
            .finish()
    }
}

impl SlotTable {
    /// An empty table for `vm`.
    pub fn new(vm: Arc<VmFd>) -> Self {
        Self {
            vm,
            slots: Vec::new(),
        }
    }

    /// Registers `mapping` at guest physical `gpa` and returns the slot id.
    pub fn add(&mut self, gpa: u64, mapping: Arc<MmapRegion>) -> Result<u32, SlotError> {
        let size = mapping.size() as u64;
        let bad = |why| SlotError::BadRange { gpa, size, why };
        if size == 0 {
            return Err(bad("empty mapping"));
        }
        let end = gpa
            .checked_add(size)
            .ok_or_else(|| bad("range overflows"))?;
        if self
            .slots
            .iter()
            .any(|s| gpa < s.gpa + s.mapping.size() as u64 && s.gpa < end)
        {
            return Err(bad("overlaps another memory slot"));
        }
        let slot = u32::try_from(self.slots.len()).map_err(|_| bad("too many slots"))?;
        self.slots.push(Slot {
            gpa,
            mapping,
            active: false,
        });
        self.set_active(slot, true)?;
        Ok(slot)
    }

    /// Deletes (`false`) or re-creates (`true`) slot `slot` with its original mapping.
    pub fn set_active(&mut self, slot: u32, active: bool) -> Result<(), SlotError> {
        let s = self
            .slots
            .get_mut(slot as usize)
            .ok_or(SlotError::NoSuchSlot(slot))?;
        if s.active == active {
            return Ok(());
        }
        let region = kvm_userspace_memory_region {
            slot,
            guest_phys_addr: s.gpa,
            memory_size: if active { s.mapping.size() as u64 } else { 0 },
            userspace_addr: s.mapping.as_ptr() as u64,
            flags: 0,
        };
        // SAFETY: `userspace_addr`/`memory_size` describe exactly the live mapping
        // `s.mapping`, which this table owns and keeps alive until the slot is deleted
        // (`Drop` deletes active slots before releasing mappings, and leaks them if that
        // fails). `add` rejected overlapping guest ranges. A size of 0 deletes the slot.
        unsafe { self.vm.set_user_memory_region(region) }
            .map_err(|source| SlotError::Kvm { slot, source })?;
        s.active = active;
        Ok(())
    }

    /// Whether slot `slot` is currently registered with KVM.
    pub fn is_active(&self, slot: u32) -> bool {
        self.slots.get(slot as usize).is_some_and(|s| s.active)
    }
}

impl Drop for SlotTable {
    fn drop(&mut self) {
        for slot in 0..self.slots.len() {
            let Ok(id) = u32::try_from(slot) else { break };
            if self.set_active(id, false).is_err() {
                // The kernel may still point at these mappings: never unmap them.
                for s in self.slots.drain(..) {
                    std::mem::forget(s.mapping);
                }
                return;
            }
        }
    }
}
