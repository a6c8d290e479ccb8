//! Parsing of sizes and addresses given on the command line.

/// Parses `512M`, `1G`, `4096`, `0x2000_0000`, `64K` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t.as_str(), 1),
    };
    let v = if let Some(h) = num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        num.parse::<u64>()
    }
    .map_err(|e| format!("invalid size or address {s:?}: {e}"))?;
    v.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} overflows 64 bits"))
}

/// Alignment of a CFMWS window base (the CXL host-bridge decoder granule).
pub const WINDOW_ALIGN: u64 = 256 << 20;

/// Lowest accepted `--window-base`: 4 GiB, so that CFMWS windows never land on the
/// guest's low RAM, the 32-bit PCI hole or the firmware area below 4 GiB.
pub const MIN_WINDOW_BASE: u64 = 4 << 30;

/// Parses a `--window-base`: a size/address as [`parse_size`], at least
/// [`MIN_WINDOW_BASE`] and a multiple of [`WINDOW_ALIGN`].
pub fn parse_window_base(s: &str) -> Result<u64, String> {
    let v = parse_size(s)?;
    if v < MIN_WINDOW_BASE {
        return Err(format!(
            "{v:#x} is below 4 GiB: the CFMWS windows must lie above guest RAM and the 32-bit PCI \
             hole (use for example 0x4000000000)"
        ));
    }
    if !v.is_multiple_of(WINDOW_ALIGN) {
        return Err(format!(
            "{v:#x} is not 256 MiB aligned (CFMWS windows are; use for example {:#x})",
            v.next_multiple_of(WINDOW_ALIGN)
        ));
    }
    Ok(v)
}

/// Parses a size as [`parse_size`] that must not be zero.
pub fn parse_nonzero_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err("must not be 0".to_string()),
        v => Ok(v),
    }
}

/// Parses a plain number, decimal or `0x` hexadecimal (`_` separators allowed), that
/// fits `T` (bus numbers, segments, UIDs).
pub fn parse_number<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let t = s.trim().replace('_', "");
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse::<u64>()
    }
    .map_err(|e| format!("invalid number {s:?}: {e}"))?;
    T::try_from(v).map_err(|_| format!("{s:?} does not fit {} bits", 8 * size_of::<T>()))
}

#[cfg(test)]
mod tests {
    use super::{parse_nonzero_size, parse_number, parse_size, parse_window_base};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("0x4000_0000_00"), Ok(0x40_0000_0000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("17179869184T").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn window_bases() {
        assert_eq!(parse_window_base("0x4000000000"), Ok(0x40_0000_0000));
        assert_eq!(parse_window_base("4G"), Ok(4 << 30));
        for bad in ["0", "0x10000000", "4095M", "0x4000000001", "0x4008000000"] {
            assert!(parse_window_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number::<u8>("0x1f"), Ok(0x1f));
        assert_eq!(parse_number::<u8>("255"), Ok(255));
        assert_eq!(parse_number::<u16>("0X1_0"), Ok(16));
        assert!(parse_number::<u8>("0x100").is_err_and(|e| e.contains("8 bits")));
        assert!(parse_number::<u8>("1M").is_err());
        assert!(parse_number::<u32>("").is_err());
        assert_eq!(parse_nonzero_size("16G"), Ok(16 << 30));
        assert!(parse_nonzero_size("0").is_err());
    }
}
