//! The demo's errors print each fact once (`a: b: c`, as the CLI prints them).
#![allow(clippy::unwrap_used)]

use cxl_passthrough::backend::BackendError;
use cxl_passthrough::backend::sim::Op;
use cxl_passthrough::runtime::topology::TopologyPlanError;
use cxl_passthrough::uapi::UapiRevision;
use cxl_passthrough::vmm::VmmError;

use super::chain_common::{EIO, assert_chain_once, faulted_probe};
use crate::demo::harness::HarnessError;
use crate::demo::kvm::SlotError;
use crate::demo::scenario::DemoError;

#[test]
fn demo_errors_print_the_probe_chain_once() {
    let source = faulted_probe(UapiRevision::V2, Op::DeviceInfo);
    let e = DemoError::Setup {
        name: "dev0".into(),
        source: VmmError::Probe(source),
    };
    assert_eq!(
        assert_chain_once(&e),
        format!("dev0: probing the CXL device: VFIO_DEVICE_GET_INFO failed: {EIO}")
    );
    let e = DemoError::Setup {
        name: "dev1".into(),
        source: VmmError::TopologyPlan(TopologyPlanError::ConfigRead(BackendError::errno(
            "config read",
            libc::EIO,
        ))),
    };
    assert_eq!(
        assert_chain_once(&e),
        format!(
            "dev1: planning the CXL topology (host bridge, root port, device): config space read: \
             config read failed: {EIO}"
        )
    );
}

#[test]
fn kvm_errors_print_the_os_error_once() {
    let e = SlotError::Kvm {
        slot: 3,
        source: kvm_ioctls::Error::new(libc::EINVAL),
    };
    let text = assert_chain_once(&e);
    assert!(
        text.starts_with("KVM_SET_USER_MEMORY_REGION slot 3"),
        "{text}"
    );
    let e = HarnessError::Slot(e);
    assert_chain_once(&e);
    let e = HarnessError::Kvm {
        op: "KVM_CREATE_VCPU",
        source: kvm_ioctls::Error::new(libc::EINVAL),
    };
    let text = assert_chain_once(&e);
    assert!(text.starts_with("KVM_CREATE_VCPU failed: "), "{text}");
}
