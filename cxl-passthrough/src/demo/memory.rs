//! How much host memory a demo run needs, and how much the host has available
//! (`MemAvailable` in `/proc/meminfo`), so that a run too large for the host is refused
//! before anything is allocated.

use std::path::{Path, PathBuf};

use super::layout::ram_size;

/// Where the kernel reports memory statistics.
pub const MEMINFO: &str = "/proc/meminfo";

/// Why the available memory could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum MemInfoError {
    /// The file could not be read.
    #[error("reading {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No `MemAvailable:` line (kernels before 3.14).
    #[error("no MemAvailable line in the memory statistics")]
    Missing,
    /// The `MemAvailable:` line is not `MemAvailable: <number> kB`.
    #[error("malformed MemAvailable line {0:?} (expected `MemAvailable: <number> kB`)")]
    Malformed(String),
}

/// Parses the `MemAvailable:` line of `/proc/meminfo` text; returns bytes.
pub fn parse_mem_available(meminfo: &str) -> Result<u64, MemInfoError> {
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .ok_or(MemInfoError::Missing)?;
    let bad = || MemInfoError::Malformed(line.to_string());
    let mut words = line
        .strip_prefix("MemAvailable:")
        .ok_or_else(bad)?
        .split_whitespace();
    let kib: u64 = words.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if words.next() != Some("kB") || words.next().is_some() {
        return Err(bad());
    }
    kib.checked_mul(1024).ok_or_else(bad)
}

/// Reads the host's available memory (bytes) from `path` (normally [`MEMINFO`]).
pub fn mem_available(path: &Path) -> Result<u64, MemInfoError> {
    let text = std::fs::read_to_string(path).map_err(|source| MemInfoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_mem_available(&text)
}

/// Host memory a demo run uses: `devices` bytes of simulated device memory (the demo
/// writes every page of each device's memory) plus the guest RAM for
/// `bandwidth_bytes`-byte bandwidth passes. Saturates instead of overflowing.
pub fn demo_memory_need(devices: u64, bandwidth_bytes: u64) -> u64 {
    let ram = bandwidth_bytes
        .checked_mul(2)
        .and_then(|b| ram_size(0).checked_add(b))
        .unwrap_or(u64::MAX);
    devices.saturating_add(ram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_parsed_in_bytes() {
        let text = "MemTotal:       24683772 kB\nMemFree:        21476560 kB\n\
                    MemAvailable:   23995852 kB\nBuffers:            2132 kB\n";
        assert!(matches!(parse_mem_available(text), Ok(v) if v == 23_995_852 * 1024));
        assert!(matches!(
            parse_mem_available("MemTotal: 1 kB\n"),
            Err(MemInfoError::Missing)
        ));
        for bad in [
            "MemAvailable:\n",
            "MemAvailable: lots kB\n",
            "MemAvailable: 12 MB\n",
            "MemAvailable: 12\n",
            "MemAvailable: 12 kB extra\n",
            "MemAvailable: 18446744073709551615 kB\n",
        ] {
            assert!(
                matches!(parse_mem_available(bad), Err(MemInfoError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn need_counts_devices_and_guest_ram() {
        assert_eq!(
            demo_memory_need(2 << 30, 8 << 20),
            (2 << 30) + ram_size(8 << 20)
        );
        assert_eq!(demo_memory_need(u64::MAX, 1), u64::MAX);
        assert_eq!(demo_memory_need(0, u64::MAX), u64::MAX);
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let e = mem_available(Path::new("/nonexistent/meminfo")).unwrap_err();
        assert!(matches!(e, MemInfoError::Read { .. }), "{e}");
    }
}
