//! [`Case`]: one nested run — the L2 kernel, the number of simulated CXL devices and the
//! UAPI revision of the first device — and its spellings in `CXL_E2E_CASES` /
//! `run-nested.sh --runs` (`KERNEL:DEVICES[:REVISION]`) and on the console
//! (`@@run.begin=<label>`).

/// The first device's revision when a case names none (the second device is always v2).
pub const DEFAULT_REVISION: &str = "v3";

/// One nested case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// L2 kernel: "6.12" or "7.3".
    pub kernel: String,
    /// Simulated CXL devices: 1 or 2.
    pub devices: usize,
    /// UAPI revision of the first device's simulator ("v2", "v3", "v4").
    pub revision: String,
}

impl Case {
    /// `KERNEL:DEVICES[:REVISION]`; `None` when malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split(':');
        let kernel = parts.next().filter(|k| !k.is_empty())?.to_string();
        let devices = parts.next()?.parse().ok()?;
        let revision = parts.next().unwrap_or(DEFAULT_REVISION).to_string();
        parts.next().is_none().then_some(Self {
            kernel,
            devices,
            revision,
        })
    }

    /// The spelling `run-nested.sh --runs` takes.
    pub fn run(&self) -> String {
        format!("{}:{}:{}", self.kernel, self.devices, self.revision)
    }

    /// The console label (`l1-init.sh`): `KERNEL-Ndev`, with `-REVISION` unless the
    /// default.
    pub fn label(&self) -> String {
        let base = format!("{}-{}dev", self.kernel, self.devices);
        if self.revision == DEFAULT_REVISION {
            base
        } else {
            format!("{base}-{}", self.revision)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse_with_and_without_a_revision() {
        let c = Case::parse("7.3:1:v4").expect("case");
        assert_eq!(
            (c.run(), c.label()),
            ("7.3:1:v4".into(), "7.3-1dev-v4".into())
        );
        let c = Case::parse(" 6.12:2").expect("case");
        assert_eq!(
            (c.run(), c.label()),
            ("6.12:2:v3".into(), "6.12-2dev".into())
        );
        for bad in ["", "7.3", "7.3:x", ":1", "7.3:1:v4:extra"] {
            assert_eq!(Case::parse(bad), None, "{bad:?}");
        }
    }
}
