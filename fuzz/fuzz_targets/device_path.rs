//! Device-path fuzzing: `DevicePath::parse` on arbitrary user strings (the VMM's
//! `--device path=...`, the CLI's `--device`). Invariants: no panic; an empty string is
//! `Empty`; a `sim:` string is a simulated device or `UnknownSim` naming exactly what
//! followed the prefix, never a kernel path; any other string is a kernel path, and a
//! BDF it yields is the string's last path component (trailing slashes aside).
#![no_main]

use cxl_passthrough::backend::kernel::DeviceLocator;
use cxl_passthrough::vmm::{DevicePath, PathError, SIM_PATH_PREFIX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = DevicePath::parse(s);
    match s.strip_prefix(SIM_PATH_PREFIX) {
        _ if s.is_empty() => assert_eq!(parsed, Err(PathError::Empty)),
        Some(name) => match parsed {
            Ok(p) => assert!(p.is_sim(), "{s:?} parsed as a kernel path"),
            Err(PathError::UnknownSim(n, _)) => assert_eq!(n, name),
            Err(e) => panic!("{s:?}: unexpected {e}"),
        },
        None => match parsed {
            Ok(DevicePath::Kernel(DeviceLocator::Bdf(b))) => {
                assert_eq!(s.trim_end_matches('/').rsplit('/').next(), Some(b.as_str()))
            }
            Ok(DevicePath::Kernel(DeviceLocator::Cdev(p))) => assert_eq!(p.as_os_str(), s),
            Ok(other) => panic!("{s:?} parsed as {other:?}"),
            Err(e) => panic!("{s:?}: unexpected {e}"),
        },
    }
});
