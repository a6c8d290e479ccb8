//! Robust walk of a VFIO `vfio_info_cap_header` chain.
//!
//! Offsets are relative to the start of the answer buffer. The kernel appends each
//! capability 8-byte aligned after the fixed structure and links them in increasing
//! order, so every legal `next` is past the current header; anything else is a defect.

use super::error::{Answer, UapiError};
use super::wire::{CAP_HEADER_SIZE, CapHeader};

/// Most capabilities accepted in one chain (the kernel emits at most a handful).
pub const MAX_CAPS: usize = 32;

/// Alignment of every capability header (`vfio_info_cap_add` aligns to `u64`).
pub const CAP_ALIGN: usize = 8;

/// One capability found in a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRef {
    /// Decoded header.
    pub header: CapHeader,
    /// Offset of the header from the start of the buffer.
    pub offset: usize,
    /// Bytes from `offset` to the next capability, or to the end of the buffer for the
    /// last one (then it may include trailing padding).
    pub extent: usize,
    /// Whether this is the last capability (`next == 0`).
    pub is_last: bool,
}

impl CapRef {
    /// The capability's bytes (header included), checked to hold at least `need` bytes.
    pub fn body<'a>(&self, bytes: &'a [u8], need: usize) -> Result<&'a [u8], UapiError> {
        let truncated = UapiError::TruncatedCap {
            id: self.header.id,
            offset: self.offset,
            need,
            have: self.extent,
        };
        if need > self.extent {
            return Err(truncated);
        }
        let end = self.offset.checked_add(need).ok_or(truncated.clone())?;
        bytes.get(self.offset..end).ok_or(truncated)
    }
}

/// Walks the chain that starts at `first` (0 = no chain) in `bytes`, whose fixed
/// structure is `header_size` bytes long. Returns the capabilities in chain order.
pub fn walk(
    answer: Answer,
    bytes: &[u8],
    header_size: usize,
    first: u32,
) -> Result<Vec<CapRef>, UapiError> {
    let mut caps: Vec<CapRef> = Vec::new();
    let mut cur = first;
    while cur != 0 {
        if caps.len() >= MAX_CAPS {
            return Err(UapiError::TooManyCaps {
                answer,
                max: MAX_CAPS,
            });
        }
        let off = usize::try_from(cur).unwrap_or(usize::MAX);
        let in_bounds = off >= header_size
            && off
                .checked_add(CAP_HEADER_SIZE)
                .is_some_and(|end| end <= bytes.len());
        if !in_bounds {
            return Err(UapiError::CapOffsetOutOfBounds {
                answer,
                offset: cur,
                min: header_size,
                len: bytes.len(),
            });
        }
        if !off.is_multiple_of(CAP_ALIGN) {
            return Err(UapiError::CapOffsetMisaligned {
                answer,
                offset: cur,
            });
        }
        let header = CapHeader::decode(bytes, off).ok_or(UapiError::CapOffsetOutOfBounds {
            answer,
            offset: cur,
            min: header_size,
            len: bytes.len(),
        })?;
        let next = header.next;
        let (extent, is_last) = if next == 0 {
            (bytes.len() - off, true)
        } else {
            if next == cur || caps.iter().any(|c| c.offset as u64 == u64::from(next)) {
                return Err(UapiError::ChainLoop {
                    answer,
                    offset: next,
                });
            }
            let next_off = usize::try_from(next).unwrap_or(usize::MAX);
            if next_off < off + CAP_HEADER_SIZE {
                return Err(UapiError::ChainBackwards {
                    answer,
                    offset: cur,
                    next,
                });
            }
            (next_off - off, false)
        };
        caps.push(CapRef {
            header,
            offset: off,
            extent,
            is_last,
        });
        cur = next;
    }
    Ok(caps)
}

/// Returns the single capability with `id`, or `DuplicateCap` if it appears twice.
pub fn find_unique(caps: &[CapRef], id: u16) -> Result<Option<CapRef>, UapiError> {
    let mut found: Option<CapRef> = None;
    for c in caps.iter().filter(|c| c.header.id == id) {
        if let Some(first) = found {
            return Err(UapiError::DuplicateCap {
                id,
                first: first.offset,
                second: c.offset,
            });
        }
        found = Some(*c);
    }
    Ok(found)
}

/// Checks a known capability's version.
pub fn check_version(cap: &CapRef, expected: u16) -> Result<(), UapiError> {
    if cap.header.version != expected {
        return Err(UapiError::UnsupportedCapVersion {
            id: cap.header.id,
            version: cap.header.version,
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(id: u16, next: u32) -> [u8; 8] {
        CapHeader {
            id,
            version: 1,
            next,
        }
        .encode()
    }

    #[test]
    fn walks_in_order_with_extents() {
        let mut b = vec![0u8; 24];
        b.extend_from_slice(&hdr(3, 40));
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&hdr(4, 0));
        b.extend_from_slice(&[0; 16]);
        let caps = walk(Answer::DeviceInfo, &b, 24, 24).unwrap();
        assert_eq!(caps.len(), 2);
        assert_eq!(
            (caps[0].offset, caps[0].extent, caps[0].is_last),
            (24, 16, false)
        );
        assert_eq!(
            (caps[1].offset, caps[1].extent, caps[1].is_last),
            (40, 24, true)
        );
    }

    #[test]
    fn self_loop_and_backwards_are_rejected() {
        let mut b = vec![0u8; 24];
        b.extend_from_slice(&hdr(3, 24));
        assert!(matches!(
            walk(Answer::DeviceInfo, &b, 24, 24),
            Err(UapiError::ChainLoop { offset: 24, .. })
        ));
        let mut b = vec![0u8; 24];
        b.extend_from_slice(&hdr(3, 32));
        b.extend_from_slice(&hdr(3, 24));
        assert!(matches!(
            walk(Answer::DeviceInfo, &b, 24, 24),
            Err(UapiError::ChainLoop { offset: 24, .. })
        ));
        let mut b = vec![0u8; 48];
        b.extend_from_slice(&hdr(3, 40));
        assert!(matches!(
            walk(Answer::DeviceInfo, &b, 24, 48),
            Err(UapiError::ChainBackwards {
                offset: 48,
                next: 40,
                ..
            })
        ));
    }
}
