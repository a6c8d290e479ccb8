//! Kernel backend: region reads/writes, mmap source, reset, DMA on a handed-over fd.

mod kernel_support;

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cxl_passthrough::backend::kernel::KernelBackend;
use cxl_passthrough::backend::kernel::syscall::VFIO_DEVICE_RESET;
use cxl_passthrough::backend::{Backend, BackendError, ResetKind};
use kernel_support::{FakeSys, Kind, Req};

fn backend(
    h: impl FnMut(Req<'_>) -> io::Result<usize> + Send + 'static,
) -> (KernelBackend<FakeSys>, FakeSys) {
    let sys = FakeSys::new(h);
    let fd = sys.fd("device");
    (KernelBackend::from_device_fd_with(sys.clone(), fd), sys)
}

#[test]
fn read_goes_to_region_offset_plus_offset() {
    let (b, sys) = backend(|req| match req {
        Req::Read { offset, buf } => {
            buf.copy_from_slice(&(offset as u32).to_le_bytes()[..buf.len()]);
            Ok(buf.len())
        }
        _ => Ok(0),
    });
    let mut buf = [0u8; 4];
    assert_eq!(b.read(0x9_0000_0000, 0x1004, &mut buf).unwrap(), 4);
    assert_eq!(u32::from_le_bytes(buf), 0x1004);
    assert_eq!(
        sys.calls().last().unwrap().kind,
        Kind::Pread {
            offset: 0x9_0000_1004,
            len: 4
        }
    );
    assert_eq!(sys.calls().last().unwrap().node, PathBuf::from("device"));
}

#[test]
fn short_read_is_reported_as_it_happened() {
    let (b, _) = backend(|req| match req {
        Req::Read { buf, .. } => {
            buf[..2].copy_from_slice(&[0xAA, 0xBB]);
            Ok(2)
        }
        _ => Ok(0),
    });
    let mut buf = [0u8; 4];
    assert_eq!(b.read(0, 0, &mut buf).unwrap(), 2);
    assert_eq!(buf, [0xAA, 0xBB, 0, 0]);
}

#[test]
fn kernel_claiming_more_than_asked_is_clamped() {
    let (b, _) = backend(|_| Ok(1 << 20));
    let mut buf = [0u8; 4];
    assert_eq!(b.read(0, 0, &mut buf).unwrap(), 4);
    assert_eq!(b.write(0, 0, &buf).unwrap(), 4);
}

#[test]
fn eintr_on_read_and_write_is_retried() {
    let mut n = 0;
    let (b, sys) = backend(move |req| {
        n += 1;
        if n % 2 == 1 {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        Ok(match req {
            Req::Read { buf, .. } => buf.len(),
            Req::Write { data, .. } => data.len(),
            _ => 0,
        })
    });
    let mut buf = [0u8; 8];
    assert_eq!(b.read(0x100, 0, &mut buf).unwrap(), 8);
    assert_eq!(b.write(0x100, 8, &[1, 2, 3, 4]).unwrap(), 4);
    let calls = sys.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls[3].kind,
        Kind::Pwrite {
            offset: 0x108,
            data: vec![1, 2, 3, 4]
        }
    );
}

#[test]
fn errors_carry_the_errno() {
    let (b, _) = backend(|_| Err(io::Error::from_raw_os_error(libc::EIO)));
    let mut buf = [0u8; 4];
    assert_eq!(
        b.read(0, 0, &mut buf).unwrap_err().raw_os_error(),
        Some(libc::EIO)
    );
    let (b, _) = backend(|_| Err(io::Error::from_raw_os_error(libc::EINVAL)));
    assert_eq!(
        b.write(0, 0, &buf).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

#[test]
fn overflowing_offsets_never_reach_the_kernel() {
    let (b, sys) = backend(|_| Ok(4));
    let mut buf = [0u8; 4];
    assert!(matches!(
        b.read(u64::MAX, 1, &mut buf),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(
        b.write(1 << 63, 0, &buf),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(
        b.mmap_source(u64::MAX),
        Err(BackendError::Invalid(_))
    ));
    assert!(sys.calls().is_empty());
}

#[test]
fn mmap_source_is_the_device_fd_at_the_kernel_offset() {
    let (b, sys) = backend(|_| Ok(0));
    let src = b.mmap_source(0x9_0000_0000).unwrap();
    assert_eq!(src.offset, 0x9_0000_0000);
    let dev = sys.fd_of(&PathBuf::from("device")).unwrap();
    assert_eq!(src.fd.as_raw_fd(), dev);
}

#[test]
fn reset_issues_vfio_device_reset_and_reports_failure() {
    let fail = Arc::new(Mutex::new(false));
    let f2 = fail.clone();
    let (b, sys) = backend(move |_| {
        if *f2.lock().unwrap() {
            Err(io::Error::from_raw_os_error(libc::ENOTTY))
        } else {
            Ok(0)
        }
    });
    b.reset(ResetKind::Device).unwrap();
    assert_eq!(
        sys.ioctls(),
        vec![(PathBuf::from("device"), VFIO_DEVICE_RESET)]
    );
    assert_eq!(sys.calls()[0].kind, Kind::IoctlVal(0));
    *fail.lock().unwrap() = true;
    let e = b.reset(ResetKind::Device).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
}

#[test]
fn handed_over_fd_has_no_dma_context() {
    let (b, sys) = backend(|_| Ok(0));
    assert!(b.iommu().is_none());
    assert!(matches!(
        b.map_dma(0, 0x1000, 0x1000),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(
        b.unmap_dma(0, 0x1000),
        Err(BackendError::Invalid(_))
    ));
    assert!(sys.ioctls().is_empty());
}

#[test]
fn backend_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<KernelBackend>();
    check::<KernelBackend<FakeSys>>();
    let _: Box<dyn Backend> = Box::new(backend(|_| Ok(0)).0);
}

/// The real syscall layer on an ordinary file standing in for the device fd: positions,
/// short reads at end of file, and writes land where the kernel would put them.
#[test]
fn real_syscalls_on_a_file() {
    let dir = kernel_support::temp_dir("realio");
    let path = dir.join("regions");
    std::fs::write(&path, (0u8..64).collect::<Vec<u8>>()).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let b = KernelBackend::from_device_fd(f.into());
    let mut buf = [0u8; 4];
    assert_eq!(b.read(0x10, 4, &mut buf).unwrap(), 4);
    assert_eq!(buf, [0x14, 0x15, 0x16, 0x17]);
    // 2 bytes left before end of file: a short read, reported as such.
    assert_eq!(b.read(0x30, 0xE, &mut buf).unwrap(), 2);
    assert_eq!(buf[..2], [0x3E, 0x3F]);
    assert_eq!(b.write(0x20, 0, &[0xAA, 0xBB]).unwrap(), 2);
    assert_eq!(
        std::fs::read(&path).unwrap()[0x20..0x23],
        [0xAA, 0xBB, 0x22]
    );
    // Not a VFIO device: reset fails with the kernel's ENOTTY, nothing panics.
    let e = b.reset(ResetKind::Device).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    assert_eq!(
        b.device_info().unwrap_err().raw_os_error(),
        Some(libc::ENOTTY)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
