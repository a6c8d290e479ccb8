//! Every error prints each fact once when its chain is printed (`a: b: c`, as the CLI
//! and `anyhow`'s `{:#}` print it): real failures provoked through the simulator's fault
//! injection, the kernel backend's error mapping and the register walkers.
#![allow(clippy::unwrap_used)]

mod chain_common;

use std::io;

use chain_common::{EIO, assert_chain_once, faulted_probe};
use cxl_passthrough::backend::BackendError;
use cxl_passthrough::backend::kernel::OpenError;
use cxl_passthrough::backend::sim::{Op, SimError};
use cxl_passthrough::errors::Chain;
use cxl_passthrough::regs::component::find_hdm_block;
use cxl_passthrough::regs::pci::find_dvsec;
use cxl_passthrough::uapi::UapiRevision;

#[test]
fn probe_errors_from_the_backend_print_once() {
    for revision in UapiRevision::ALL {
        let e = faulted_probe(revision, Op::DeviceInfo);
        assert_eq!(
            assert_chain_once(&e),
            format!("VFIO_DEVICE_GET_INFO failed: {EIO}")
        );
        let e = faulted_probe(revision, Op::RegionInfo);
        let text = assert_chain_once(&e);
        assert!(text.starts_with("VFIO_DEVICE_GET_REGION_INFO"), "{text}");
        assert!(text.ends_with(&format!(" failed: {EIO}")), "{text}");
        let e = faulted_probe(revision, Op::Read);
        let text = assert_chain_once(&e);
        assert_eq!(text.matches(EIO).count(), 1, "{text}");
    }
}

#[test]
fn open_errors_print_the_os_error_once() {
    let e = OpenError::from_ioctl(
        "VFIO_GROUP_GET_STATUS",
        io::Error::from_raw_os_error(libc::EIO),
    );
    assert_eq!(
        assert_chain_once(&e),
        format!("VFIO_GROUP_GET_STATUS failed: {EIO}")
    );
    let e = OpenError::from_open(
        "/dev/vfio/7".into(),
        io::Error::from_raw_os_error(libc::EBUSY),
    );
    let text = assert_chain_once(&e);
    assert_eq!(text.matches("Device or resource busy").count(), 1, "{text}");
}

#[test]
fn register_walk_errors_print_the_read_error_once() {
    let e = find_dvsec(
        |_| Err::<u32, _>(BackendError::errno("config read", libc::EIO)),
        0x1e98,
        0,
    )
    .unwrap_err();
    assert_eq!(
        assert_chain_once(&e),
        format!("config read at 0x100 failed: config read failed: {EIO}")
    );
    let e = find_hdm_block(
        |_| Err::<u32, _>(BackendError::errno("COMP_REGS read", libc::EIO)),
        0,
        0x1000,
    )
    .unwrap_err();
    let text = assert_chain_once(&e);
    assert_eq!(text.matches(EIO).count(), 1, "{text}");
}

#[test]
fn simulator_errors_print_the_os_error_once() {
    let e = SimError::Io(io::Error::from_raw_os_error(libc::ENOMEM));
    let text = assert_chain_once(&e);
    assert!(text.starts_with("simulator backing memory: "), "{text}");
}

#[test]
fn chain_prints_like_anyhow() {
    let e = faulted_probe(UapiRevision::V3, Op::DeviceInfo);
    let chained = Chain(&e).to_string();
    let any = anyhow::Error::new(e).context("probing sim:v3");
    assert_eq!(format!("{any:#}"), format!("probing sim:v3: {chained}"));
    chain_common::assert_text_once(&format!("{any:#}"));
}
