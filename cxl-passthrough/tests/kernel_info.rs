//! Kernel backend: device and region info ioctls (encoding, argsz growth, hostile
//! answers), against a recording fake of the syscall layer.

mod kernel_support;

use std::io;
use std::path::Path;

use cxl_passthrough::backend::kernel::KernelBackend;
use cxl_passthrough::backend::kernel::syscall::{
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO,
};
use cxl_passthrough::backend::{Backend, BackendError};
use cxl_passthrough::uapi::wire::{self, RegionInfoHeader};
use kernel_support::{FakeSys, Kind, Req, kernel_info_answer, kernel_offset, region_info};

/// A backend over a fake kernel that answers GET_INFO with `info` and GET_REGION_INFO
/// from the canned region table, like vfio does (caps only when argsz covers them).
fn backend(info: Vec<u8>) -> (KernelBackend<FakeSys>, FakeSys) {
    let sys = FakeSys::new(move |req| match req {
        Req::Buf {
            request: VFIO_DEVICE_GET_INFO,
            buf,
            ..
        } => {
            kernel_info_answer(&info, wire::DEVICE_INFO_SIZE, 16, buf);
            Ok(0)
        }
        Req::Buf {
            request: VFIO_DEVICE_GET_REGION_INFO,
            buf,
            ..
        } => {
            let index = wire::le32(buf, 8).unwrap_or(u32::MAX);
            if index > 10 {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            kernel_info_answer(&region_info(index), wire::REGION_INFO_SIZE, 12, buf);
            Ok(0)
        }
        _ => Err(io::Error::from_raw_os_error(libc::ENOTTY)),
    });
    let fd = sys.fd("device");
    (KernelBackend::from_device_fd_with(sys.clone(), fd), sys)
}

/// The argument buffers of every ioctl `request` sent to the device, in order.
fn sent(sys: &FakeSys, request: u64) -> Vec<Vec<u8>> {
    sys.calls()
        .into_iter()
        .filter(|c| c.request == request && c.node == Path::new("device"))
        .filter_map(|c| match c.kind {
            Kind::IoctlBuf(b) => Some(b),
            _ => None,
        })
        .collect()
}

#[test]
fn v2_device_info_grows_once_and_returns_the_capability_chain() {
    let info = kernel_support::v2_device_info();
    let (b, sys) = backend(info.clone());
    let got = b.device_info().unwrap();
    assert_eq!(got, info, "header + 32-byte v2 CXL cap, argsz = 56");
    let args = sent(&sys, VFIO_DEVICE_GET_INFO);
    assert_eq!(args.len(), 2);
    assert_eq!(args[0].len(), 24);
    assert_eq!(wire::le32(&args[0], 0), Some(24));
    assert_eq!(wire::le32(&args[1], 0), Some(56));
    let cap = wire::CxlCapV2::decode(&got, 24).unwrap();
    assert_eq!((cap.dpa_region_index, cap.comp_regs_region_index), (9, 10));
}

#[test]
fn v3_device_info_grows_to_72_bytes() {
    let info = kernel_support::v3_device_info();
    let (b, sys) = backend(info.clone());
    let got = b.device_info().unwrap();
    assert_eq!(got.len(), 72);
    assert_eq!(got, info);
    assert_eq!(
        wire::CxlCapV3::decode(&got, 24).unwrap().comp_reg_size,
        0x1_0000
    );
    assert_eq!(sent(&sys, VFIO_DEVICE_GET_INFO).len(), 2);
}

#[test]
fn region_info_places_the_index_and_keeps_the_kernel_offset() {
    let (b, sys) = backend(kernel_support::v2_device_info());
    for index in [9u32, 10, 2] {
        let got = b.region_info(index).unwrap();
        assert_eq!(got, region_info(index), "region {index}");
        let hdr = RegionInfoHeader::decode(&got).unwrap();
        assert_eq!(hdr.offset, kernel_offset(index));
        assert_ne!(hdr.offset, u64::from(index) << wire::PCI_OFFSET_SHIFT);
    }
    let args = sent(&sys, VFIO_DEVICE_GET_REGION_INFO);
    // Each region: a 32-byte probe, then the grown call; index at byte 8 in both.
    assert_eq!(args.len(), 6);
    for (call, index) in args.iter().zip([9u32, 9, 10, 10, 2, 2]) {
        assert_eq!(wire::le32(call, 8), Some(index));
        assert_eq!(wire::le32(call, 0), Some(call.len() as u32));
    }
    assert_eq!(args[0].len(), 32);
    assert_eq!(args[5].len(), 32 + 16 + 32, "sparse cap with two areas");
}

#[test]
fn region_without_caps_needs_one_call() {
    let (b, sys) = backend(kernel_support::v2_device_info());
    let got = b.region_info(7).unwrap();
    assert_eq!(got.len(), 32);
    assert_eq!(sent(&sys, VFIO_DEVICE_GET_REGION_INFO).len(), 1);
    let e = b.region_info(11).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
}

fn hostile(
    reply: impl FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
) -> (KernelBackend<FakeSys>, FakeSys) {
    let mut reply = reply;
    let sys = FakeSys::new(move |req| match req {
        Req::Buf { buf, .. } => reply(buf),
        _ => Ok(0),
    });
    let fd = sys.fd("device");
    (KernelBackend::from_device_fd_with(sys.clone(), fd), sys)
}

#[test]
fn absurd_argsz_is_refused_without_allocating_it() {
    let (b, sys) = hostile(|buf| {
        buf[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        Ok(0)
    });
    assert!(matches!(b.device_info(), Err(BackendError::Invalid(_))));
    assert!(matches!(b.region_info(9), Err(BackendError::Invalid(_))));
    assert_eq!(sys.ioctls().len(), 2, "one call each, no retry with 4 GiB");
}

#[test]
fn argsz_growing_forever_stops() {
    let (b, sys) = hostile(|buf| {
        let n = buf.len() as u32 + 8;
        buf[..4].copy_from_slice(&n.to_le_bytes());
        Ok(0)
    });
    assert!(matches!(b.region_info(9), Err(BackendError::Invalid(_))));
    assert!(sys.ioctls().len() <= 4);
}

#[test]
fn enotty_is_reported_with_its_errno() {
    let (b, _) = hostile(|_| Err(io::Error::from_raw_os_error(libc::ENOTTY)));
    let e = b.device_info().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    assert!(e.to_string().contains("VFIO_DEVICE_GET_INFO"), "{e}");
    let e = b.region_info(10).unwrap_err();
    assert!(e.to_string().contains("GET_REGION_INFO(10)"), "{e}");
}

#[test]
fn eintr_is_retried_then_the_answer_is_used() {
    let info = kernel_support::v2_device_info();
    let mut n = 0;
    let (b, sys) = hostile(move |buf| {
        n += 1;
        if n <= 2 {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        kernel_info_answer(&info, 24, 16, buf);
        Ok(0)
    });
    assert_eq!(b.device_info().unwrap(), kernel_support::v2_device_info());
    assert_eq!(sys.ioctls().len(), 4, "2 interrupted + probe + grown call");
}

#[test]
fn endless_eintr_gives_up() {
    let (b, sys) = hostile(|_| Err(io::Error::from_raw_os_error(libc::EINTR)));
    let e = b.device_info().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINTR));
    assert_eq!(
        sys.ioctls().len(),
        cxl_passthrough::backend::kernel::MAX_EINTR_RETRIES + 1
    );
}

#[test]
fn answers_shorter_than_asked_or_garbage_do_not_panic() {
    // argsz shrinks to 0, garbage elsewhere: returned as is for the parsers to judge.
    let (b, _) = hostile(|buf| {
        buf.fill(0xFF);
        buf[..4].copy_from_slice(&0u32.to_le_bytes());
        Ok(0)
    });
    let got = b.region_info(9).unwrap();
    assert_eq!(got.len(), 32);
    assert_eq!(wire::le32(&got, 0), Some(0));
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One scripted kernel reply: an errno, or success with this argsz written back.
    fn reply() -> impl Strategy<Value = Result<u32, i32>> {
        prop_oneof![
            (0u32..200).prop_map(Ok),
            any::<u32>().prop_map(Ok),
            prop::sample::select(vec![libc::EINTR, libc::ENOTTY, libc::EINVAL, libc::EFAULT])
                .prop_map(Err),
        ]
    }

    proptest! {
        /// Whatever the kernel answers, info queries end (no panic, bounded calls) and a
        /// successful answer is exactly the last buffer the kernel filled.
        #[test]
        fn any_kernel_answer_is_survived(script in prop::collection::vec(reply(), 1..12)) {
            let calls = Arc::new(AtomicUsize::new(0));
            let c2 = calls.clone();
            let mut q: VecDeque<_> = script.into_iter().collect();
            let sys = FakeSys::new(move |req| {
                c2.fetch_add(1, Ordering::SeqCst);
                let r = q.pop_front().unwrap_or(Ok(0));
                match (req, r) {
                    (_, Err(e)) => Err(io::Error::from_raw_os_error(e)),
                    (Req::Buf { buf, .. }, Ok(argsz)) => {
                        buf[..4].copy_from_slice(&argsz.to_le_bytes());
                        Ok(0)
                    }
                    _ => Ok(0),
                }
            });
            let fd = sys.fd("device");
            let b = KernelBackend::from_device_fd_with(sys, fd);
            if let Ok(v) = b.region_info(9) {
                let argsz = wire::le32(&v, 0).unwrap() as usize;
                prop_assert!(argsz <= v.len());
                prop_assert!(v.len() <= cxl_passthrough::backend::MAX_INFO_ARGSZ as usize);
            }
            prop_assert!(calls.load(Ordering::SeqCst) <= 4 * (cxl_passthrough::backend::kernel::MAX_EINTR_RETRIES + 1));
        }
    }
}
