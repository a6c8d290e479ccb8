//! Anonymous memory files (`memfd_create`) and shared mappings of them.
//!
//! The simulator keeps its "device fd" in one memfd so that `mmap(fd, region_offset)`
//! works for real. Shrinking the file makes mapped pages beyond the new end raise
//! SIGBUS, which is how the simulator models the kernel zapping DPA mappings on reset.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;

/// An anonymous, sealable-less memory file.
#[derive(Debug)]
pub struct Memfd {
    file: File,
}

impl Memfd {
    /// Creates an empty memfd named `name` (close-on-exec).
    pub fn create(name: &str) -> io::Result<Self> {
        let cname = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call;
        // memfd_create has no other memory-safety preconditions.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create, is valid and owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            file: File::from(owned),
        })
    }

    /// Sets the file length (sparse; growing reads back zeros).
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    /// Current file length.
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Reads exactly `buf.len()` bytes at `off` (zeros past the end of file).
    pub fn read_full(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.file.read_at(&mut buf[done..], off + done as u64)?;
            if n == 0 {
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    /// Writes all of `buf` at `off`.
    pub fn write_full(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.file.write_all_at(buf, off)
    }

    /// The populated (non-hole) extents of `[start, end)`, as `(offset, len)` pairs.
    pub fn data_extents(&self, start: u64, end: u64) -> io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut pos = start;
        while pos < end {
            let Some(data) = self.seek(pos, libc::SEEK_DATA)? else {
                break;
            };
            if data >= end {
                break;
            }
            let hole = self.seek(data, libc::SEEK_HOLE)?.unwrap_or(end).min(end);
            if hole <= data {
                break;
            }
            out.push((data, hole - data));
            pos = hole;
        }
        Ok(out)
    }

    fn seek(&self, pos: u64, whence: i32) -> io::Result<Option<u64>> {
        let pos = i64::try_from(pos).map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: lseek on a valid fd we own has no memory-safety preconditions.
        let r = unsafe { libc::lseek(self.file.as_raw_fd(), pos, whence) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                return Ok(None);
            }
            return Err(e);
        }
        Ok(u64::try_from(r).ok())
    }
}

impl AsFd for Memfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Protection of a [`Mapping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prot {
    /// `PROT_READ`.
    Read,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// A `MAP_SHARED` mapping of a file range; unmapped on drop.
///
/// Accessing a page whose backing is gone (file shrunk) raises SIGBUS, exactly like a
/// zapped VFIO mapping. Use [`Mapping::probe_read`] / [`Mapping::probe_write`] to test
/// usability without crashing: they go through a pipe, so the kernel reports `EFAULT`.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    prot: Prot,
}

// SAFETY: the mapping is plain shared memory owned by this value; all access goes through
// volatile copies or the kernel, so sharing the pointer between threads is sound.
unsafe impl Send for Mapping {}
// SAFETY: as above; no method hands out references into the mapping.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at file offset `offset`, `MAP_SHARED`.
    pub fn map(fd: BorrowedFd<'_>, offset: u64, len: usize, prot: Prot) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        let p = match prot {
            Prot::Read => libc::PROT_READ,
            Prot::ReadWrite => libc::PROT_READ | libc::PROT_WRITE,
        };
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) cannot alias existing
        // Rust memory; the fd is valid for the call; the result is checked below.
        let r = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                p,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if r == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(r.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFAULT))?;
        Ok(Self { ptr, len, prot })
    }

    /// Start address (for handing to a hypervisor or an IOMMU).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true for a live mapping).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, n: usize) -> io::Result<()> {
        match off.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    /// Volatile 32-bit read at `off` (SIGBUS if the backing is gone).
    pub fn read_u32(&self, off: usize) -> io::Result<u32> {
        self.check(off, 4)?;
        if !off.is_multiple_of(4) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: bounds and alignment checked above; the memory is a live shared mapping
        // owned by `self`, and volatile access tolerates concurrent writers.
        Ok(unsafe { self.ptr.as_ptr().add(off).cast::<u32>().read_volatile() })
    }

    /// Volatile 32-bit write at `off` (SIGBUS if the backing is gone).
    pub fn write_u32(&self, off: usize, v: u32) -> io::Result<()> {
        self.check(off, 4)?;
        if !off.is_multiple_of(4) || self.prot != Prot::ReadWrite {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: bounds, alignment and write permission checked above; the memory is a
        // live shared mapping owned by `self`.
        unsafe { self.ptr.as_ptr().add(off).cast::<u32>().write_volatile(v) };
        Ok(())
    }

    /// Reads `buf.len()` bytes at `off` through a pipe: `EFAULT` instead of SIGBUS when
    /// the pages are not usable. At most 4096 bytes per call.
    pub fn probe_read(&self, off: usize, buf: &mut [u8]) -> io::Result<()> {
        self.check(off, buf.len())?;
        if buf.len() > 4096 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let (r, w) = pipe()?;
        // SAFETY: the source range lies inside the mapping (checked); the kernel validates
        // it and reports EFAULT for unusable pages instead of raising a signal.
        let n = unsafe { libc::write(w.as_raw_fd(), self.ptr.as_ptr().add(off).cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        std::io::Read::read_exact(&mut File::from(r), &mut buf[..n as usize])?;
        if (n as usize) < buf.len() {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        Ok(())
    }

    /// Writes `data` at `off` through a pipe: `EFAULT` instead of SIGBUS when the pages
    /// are not usable. At most 4096 bytes per call.
    pub fn probe_write(&self, off: usize, data: &[u8]) -> io::Result<()> {
        self.check(off, data.len())?;
        if data.len() > 4096 || self.prot != Prot::ReadWrite {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let (r, w) = pipe()?;
        std::io::Write::write_all(&mut File::from(w), data)?;
        // SAFETY: the destination range lies inside a writable mapping (checked); the
        // kernel validates it and reports EFAULT for unusable pages.
        let n = unsafe { libc::read(r.as_raw_fd(), self.ptr.as_ptr().add(off).cast(), data.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if (n as usize) < data.len() {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping created by `map` and not yet unmapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_makes_mapping_unusable_then_usable() {
        let m = Memfd::create("t").unwrap();
        m.set_len(2 * 4096).unwrap();
        m.write_full(&[7u8; 16], 4096).unwrap();
        let map = Mapping::map(m.as_fd(), 4096, 4096, Prot::ReadWrite).unwrap();
        let mut b = [0u8; 16];
        map.probe_read(0, &mut b).unwrap();
        assert_eq!(b, [7u8; 16]);
        map.write_u32(4, 0xDEAD_BEEF).unwrap();
        assert_eq!(map.read_u32(4).unwrap(), 0xDEAD_BEEF);
        m.set_len(4096).unwrap();
        assert_eq!(
            map.probe_read(0, &mut b).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
        assert_eq!(
            map.probe_write(0, &[1]).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
        m.set_len(2 * 4096).unwrap();
        map.probe_write(0, &[1, 2]).unwrap();
        let mut b = [0u8; 2];
        m.read_full(&mut b, 4096).unwrap();
        assert_eq!(b, [1, 2]);
    }

    #[test]
    fn extents_skip_holes() {
        let m = Memfd::create("t").unwrap();
        m.set_len(1 << 30).unwrap();
        m.write_full(&[1], 1 << 20).unwrap();
        let e = m.data_extents(0, 1 << 30).unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].0 <= 1 << 20 && e[0].0 + e[0].1 > 1 << 20);
        assert!(e[0].1 <= 2 << 20);
    }
}
