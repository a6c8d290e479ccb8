//! What the demo's tests need from the host: an x86-64 build (the demo's guest is
//! x86-64 code) and a usable /dev/kvm. A loud
//! skip through the skip helper, naming which one is missing, otherwise.

#![allow(dead_code)] // each test binary uses a subset

use super::skip_support::skip;

/// Whether the demo's VM can run here; a loud skip of `test` if not (on another
/// architecture, or without read-write access to /dev/kvm).
pub fn kvm_or_skip(test: &str) -> bool {
    if !cfg!(target_arch = "x86_64") {
        skip(
            test,
            &format!(
                "the demo needs an x86-64 KVM host; this build is for {}",
                std::env::consts::ARCH
            ),
            "run on an x86-64 host with KVM; qemu-user cannot run the demo's VM",
        );
        return false;
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => true,
        Err(e) => {
            skip(
                test,
                &format!("/dev/kvm is not usable ({e})"),
                "run on an x86-64 host with KVM and read-write access to /dev/kvm",
            );
            false
        }
    }
}
