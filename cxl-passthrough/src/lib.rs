//! VMM side of CXL Type-2 device passthrough.
//!
//! The Linux kernel's vfio-pci, extended for CXL, exposes a Type-2 device's coherent
//! device memory (HDM/DPA) and a shadow of its HDM decoder registers (COMP_REGS) through
//! the VFIO UAPI. This crate drives that UAPI (both the v2 revision that NVIDIA kernels
//! ship and the later v3 revision), and builds what a VMM needs on top of it.
//!
//! Layers:
//! - [`regs`]: typed CXL register definitions (pure).
//! - [`uapi`]: parsing and encoding of the kernel's answers (pure, no I/O).
//! - [`backend`]: the [`backend::Backend`] trait — the one contract with a device — and
//!   its implementations (`kernel` over a VFIO device fd, `sim` for the simulator).
//! - `sys`: the only module with `unsafe` (ioctl, mmap, memfd).
#![deny(unsafe_code)]

pub mod backend;
pub mod errors;
pub mod plan;
pub mod regs;
pub mod rootport;
pub mod runtime;
pub mod uapi;
pub mod vmm;

#[allow(unsafe_code)]
pub(crate) mod sys;
