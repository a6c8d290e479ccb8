use super::*;

const BASE: u64 = 0x3_0000_0000;
const SIZE: u64 = 0x1000_0000;

fn committed() -> Chbcr {
    Chbcr::new(ChbcrConfig::Committed(CommittedDecoder {
        base: BASE,
        size: SIZE,
        granularity: Granularity::K4,
        target_port: 3,
    }))
    .unwrap()
}

fn dword(c: &mut Chbcr, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    c.read(offset, &mut b);
    u32::from_le_bytes(b)
}

fn snapshot(c: &mut Chbcr) -> Vec<u8> {
    let mut all = vec![0u8; Chbcr::SIZE as usize];
    c.read(0, &mut all);
    all
}

/// What Linux's component-register probe reads: the array header, the HDM slot, and the
/// committed, locked decoder 0 with the endpoint's range.
#[test]
fn committed_block_reads_like_a_locked_host_bridge_decoder() {
    let mut c = committed();
    let hdr = CmCapHeader::from_bits(dword(&mut c, 0x1000));
    assert_eq!((hdr.cap_id(), hdr.version(), hdr.cm_version()), (1, 1, 1));
    assert_eq!(hdr.array_size(), 1);
    let slot = CmCapEntry::from_bits(dword(&mut c, 0x1004));
    assert_eq!(slot.cap_id(), 5);
    let hdm = 0x1000 + u64::from(slot.pointer());
    let cap = HdmCapability::from_bits(dword(&mut c, hdm));
    assert_eq!((cap.decoder_count_raw(), cap.target_count()), (0, 1));
    assert!(HdmGlobalControl::from_bits(dword(&mut c, hdm + 4)).hdm_decoder_enable());
    let base = u64::from(dword(&mut c, hdm + 0x10)) | u64::from(dword(&mut c, hdm + 0x14)) << 32;
    let size = u64::from(dword(&mut c, hdm + 0x18)) | u64::from(dword(&mut c, hdm + 0x1C)) << 32;
    assert_eq!((base, size), (BASE, SIZE));
    let ctrl = DecoderCtrl::from_bits(dword(&mut c, hdm + 0x20));
    assert!(ctrl.committed() && ctrl.commit() && ctrl.lock_on_commit());
    assert!(!ctrl.error_not_committed() && !ctrl.target_type_hostonly());
    assert_eq!((ctrl.ig(), ctrl.iw()), (Granularity::K4.encoding(), 0));
    assert_eq!(dword(&mut c, hdm + 0x24) & 0xFF, 3, "target port");
    assert_eq!(dword(&mut c, hdm + 0x28), 0);
    // CXL.io area and everything past the HDM structure reads as zero.
    assert_eq!(dword(&mut c, 0), 0);
    assert_eq!(dword(&mut c, hdm + 0x30), 0);
    assert_eq!(dword(&mut c, 0xFFFC), 0);
}

#[test]
fn passthrough_block_has_an_empty_capability_array() {
    let mut c = Chbcr::new(ChbcrConfig::Passthrough).unwrap();
    let hdr = CmCapHeader::from_bits(dword(&mut c, 0x1000));
    assert_eq!((hdr.cap_id(), hdr.array_size()), (1, 0));
    let all = snapshot(&mut c);
    assert!(all[..0x1000].iter().all(|b| *b == 0));
    assert!(all[0x1004..].iter().all(|b| *b == 0));
}

/// Hostile guest: every size at every alignment, all-ones and all-zero patterns, over the
/// whole block. Nothing changes, nothing panics.
#[test]
fn hostile_writes_change_nothing() {
    for mut c in [committed(), Chbcr::new(ChbcrConfig::Passthrough).unwrap()] {
        let before = snapshot(&mut c);
        let mut writes = 0u64;
        for pattern in [0x00u8, 0xFF, 0x5A] {
            for len in [1usize, 2, 3, 4, 8, 16] {
                let data = vec![pattern; len];
                let hot = (0x1000u64..0x1050).chain([0, 0xFFFF, 0xFFFE, 0xFFFD]);
                for off in hot {
                    c.write(off, &data);
                    writes += 1;
                }
            }
        }
        // Decommit / unlock / disable attempts as Linux would write them.
        let hdm = HDM_OFFSET;
        for (off, v) in [
            (hdm + 0x20, 0u32),
            (hdm + 4, 0),
            (hdm + 0x18, 0),
            (hdm + 0x10, 0),
        ] {
            c.write(off, &v.to_le_bytes());
            writes += 1;
        }
        // Past the end, at the end of the address space, and empty.
        c.write(0x1_0000, &[1, 2, 3, 4]);
        c.write(u64::MAX - 1, &[1, 2, 3, 4]);
        c.write(0x1010, &[]);
        c.write(0, &vec![0xAA; 0x2_0000]);
        writes += 4;
        assert_eq!(snapshot(&mut c), before);
        assert_eq!(c.ignored_writes(), writes);
    }
}

#[test]
fn reads_of_any_size_and_alignment_are_consistent() {
    let mut c = committed();
    let all = snapshot(&mut c);
    for off in 0x1000u64..0x1048 {
        for len in 1..=9usize {
            let mut b = vec![0u8; len];
            c.read(off, &mut b);
            let o = off as usize;
            assert_eq!(b, all[o..o + len], "offset {off:#x} len {len}");
        }
    }
    // Straddling the end: in-block bytes, then all-ones.
    let mut b = [0u8; 4];
    c.read(0xFFFE, &mut b);
    assert_eq!(b, [0, 0, 0xFF, 0xFF]);
    c.read(u64::MAX - 1, &mut b);
    assert_eq!(b, [0xFF; 4]);
    c.read(0, &mut []);
}

#[test]
fn invalid_decoders_are_rejected() {
    let d = |base, size| {
        Chbcr::new(ChbcrConfig::Committed(CommittedDecoder {
            base,
            size,
            granularity: Granularity::B256,
            target_port: 0,
        }))
    };
    assert_eq!(
        d(BASE + 0x1000, SIZE),
        Err(ChbcrError::BaseAlignment(BASE + 0x1000))
    );
    assert_eq!(d(BASE, 0), Err(ChbcrError::Size(0)));
    assert_eq!(
        d(BASE, SIZE + 0x10_0000),
        Err(ChbcrError::Size(SIZE + 0x10_0000))
    );
    assert!(matches!(
        d(0xF000_0000_0000_0000, 0x2000_0000_0000_0000),
        Err(ChbcrError::Wraps { .. })
    ));
    assert!(d(0xF000_0000_0000_0000, 0x1000_0000_0000_0000).is_ok());
}

/// A VMM on rust-vmm's vm-device bus sees the same bytes, and its writes are ignored.
#[cfg(feature = "vm-device")]
#[test]
fn vm_device_bus_sees_the_block() {
    use vm_device::MutDeviceMmio;
    use vm_device::bus::MmioAddress;

    let mut c = committed();
    let before = snapshot(&mut c);
    let mut b = [0u8; 4];
    c.mmio_read(MmioAddress(0xfed0_0000), CAP_SLOT0_OFFSET, &mut b);
    assert_eq!(u32::from_le_bytes(b), c.read_dword(CAP_SLOT0_OFFSET));
    c.mmio_write(MmioAddress(0xfed0_0000), CAP_SLOT0_OFFSET, &[0; 4]);
    assert_eq!(snapshot(&mut c), before);
    assert_eq!(c.ignored_writes(), 1);
}
