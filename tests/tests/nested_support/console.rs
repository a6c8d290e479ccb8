//! The nested run's console as `@@key=value` records (scripts/guest/nested/README.md).
//!
//! The console mixes QEMU's L1 serial, the L2 serial that cloud-hypervisor forwards and
//! terminal escapes, so a record may start anywhere in a line; it ends at the line end.

/// All `@@key=value` records of one run, in console order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Console {
    records: Vec<(String, String)>,
}

impl Console {
    /// Parses every `@@key=value` record of `text` (keys are everything up to the first
    /// `=`; values are trimmed of trailing whitespace and `\r`).
    pub fn parse(text: &str) -> Self {
        let records = text
            .lines()
            .filter_map(|line| {
                let (_, rec) = line.split_once("@@")?;
                let (k, v) = rec.split_once('=')?;
                let k = k.trim();
                if k.is_empty() || k.contains(char::is_whitespace) {
                    return None;
                }
                Some((k.to_string(), v.trim_end().to_string()))
            })
            .collect();
        Self { records }
    }

    /// One console per case: the records between `@@run.begin=<label>` and the next
    /// `run.begin`, each preceded by the records before the first case (the L1 boot), as
    /// `(label, console)`.
    pub fn cases(&self) -> Vec<(String, Console)> {
        let first = self
            .records
            .iter()
            .position(|(k, _)| k == "run.begin")
            .unwrap_or(self.records.len());
        let (common, rest) = self.records.split_at(first);
        let mut out: Vec<(String, Console)> = Vec::new();
        for (k, v) in rest {
            if k == "run.begin" {
                out.push((
                    v.clone(),
                    Console {
                        records: common.to_vec(),
                    },
                ));
            }
            if let Some((_, c)) = out.last_mut() {
                c.records.push((k.clone(), v.clone()));
            }
        }
        out
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.records
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (repeated keys such as `dmesg`, `iomem`, `l1.chlog`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.records
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `(key, value)` of every record whose key starts with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.records
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `name=value` fields of a space-separated value such as
    /// `base=0x10 size=0x20 lock=1`.
    pub fn field<'a>(value: &'a str, name: &str) -> Option<&'a str> {
        value
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    }
}

/// Parses `0x..` or decimal.
pub fn num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// What cloud-hypervisor logged for one CXL device: `cxl: segment S: window B+L, decoder
/// 0 locked at B+L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostWindow {
    /// PCI segment (= host bridge `_UID`).
    pub segment: u16,
    /// CFMWS window base.
    pub base: u64,
    /// CFMWS window size.
    pub size: u64,
    /// Decoder 0 base as locked by the VMM.
    pub decoder_base: u64,
    /// Decoder 0 size as locked by the VMM.
    pub decoder_size: u64,
}

fn base_plus_size(s: &str) -> Option<(u64, u64)> {
    let (b, l) = s.trim().trim_end_matches(',').split_once('+')?;
    Some((num(b)?, num(l)?))
}

/// The windows cloud-hypervisor reports in its log (`l1.chlog` records).
pub fn host_windows(c: &Console) -> Vec<HostWindow> {
    c.all("l1.chlog")
        .into_iter()
        .filter_map(|l| {
            let rest = l.split_once("cxl: segment ")?.1;
            let (seg, rest) = rest.split_once(": window ")?;
            let (win, dec) = rest.split_once(", decoder 0 locked at ")?;
            let (base, size) = base_plus_size(win)?;
            let (decoder_base, decoder_size) = base_plus_size(dec.split_whitespace().next()?)?;
            Some(HostWindow {
                segment: seg.trim().parse().ok()?,
                base,
                size,
                decoder_base,
                decoder_size,
            })
        })
        .collect()
}

/// What the VMM saw in device memory when the guest poked a device's test port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpaView {
    /// Device id (`cxl0`, from `--device ...,id=cxl0`), empty if the line names none.
    pub device: String,
    /// DPA offset.
    pub offset: u64,
    /// The 32 bytes there.
    pub bytes: Vec<u8>,
}

/// Every `host view of DPA[0x40..+32] = <hex> |text| (<device id>)` line.
pub fn host_dpa_views(c: &Console) -> Vec<DpaView> {
    c.all("l1.chlog")
        .into_iter()
        .filter_map(|l| {
            let rest = l.split_once("host view of DPA[")?.1;
            let (off, rest) = rest.split_once("..+32] = ")?;
            let hex = rest.split_whitespace().next()?;
            let bytes = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            // The text part may hold any byte, so the id is the last "(...)" of the line.
            let device = rest
                .trim_end()
                .strip_suffix(')')
                .and_then(|r| r.rsplit_once('(').map(|x| x.1))
                .unwrap_or("")
                .to_string();
            Some(DpaView {
                device,
                offset: num(off)?,
                bytes,
            })
        })
        .collect()
}

/// The first 16 bytes the VMM logged of device `device`'s memory at `offset`, one entry
/// per test-port poke there (see [`host_dpa_views`]).
pub fn vmm_saw(c: &Console, device: &str, offset: u64) -> Vec<Vec<u8>> {
    host_dpa_views(c)
        .into_iter()
        .filter(|v| v.offset == offset && v.device == device)
        .map(|v| v.bytes.get(..16).unwrap_or(&v.bytes).to_vec())
        .collect()
}

/// Little-endian bytes of space-separated `0x..` dwords (what the guest wrote/read).
pub fn dwords_le(s: &str) -> Option<Vec<u8>> {
    s.split_whitespace()
        .map(|w| u32::try_from(num(w)?).ok().map(u32::to_le_bytes))
        .collect::<Option<Vec<_>>>()
        .map(|v| v.concat())
}
