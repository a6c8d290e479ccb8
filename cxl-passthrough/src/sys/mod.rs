//! The only module with `unsafe`: thin wrappers over ioctl, pread/pwrite, mmap and
//! memfd. Every `unsafe` block carries a `SAFETY:` comment.
pub mod kvm;
#[cfg(feature = "sim")]
pub mod memfd;
pub mod page;
pub mod vfio;
