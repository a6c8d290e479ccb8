//! The demo's tests (unit tests of the binary, which owns the demo): the KVM harness with
//! stand-in devices, the demo end to end on the simulator, its error chains.

#[path = "../../../tests/chain_common/mod.rs"]
mod chain_common;
mod chains;
mod harness;
#[path = "../../../tests/demo_common/mod.rs"]
mod kvm_gate;
mod sim;
#[path = "../../../tests/skip_support/mod.rs"]
mod skip_support;
