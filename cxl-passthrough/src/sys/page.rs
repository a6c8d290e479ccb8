//! The host page size.

/// The host page size (the kernel rounds sparse-mmap carve-outs to it); 4096 if the
/// kernel does not answer.
pub fn host_page_size() -> u64 {
    // SAFETY: sysconf reads a system constant; it has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(v).ok().filter(|&p| p > 0).unwrap_or(4096)
}
