//! The kernel's VFIO CXL UAPI: constants, byte layouts and validating parsers.
//!
//! Pure code: byte slices in, typed values or typed errors out. No I/O, no `unsafe`.

pub mod wire;
