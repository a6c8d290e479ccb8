//! Unit tests of the overlay and the HDM lock sequence against a plain register file.
//! (Revision-faithful behaviour is tested against the simulator in `tests/`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::comp_regs::CompRegs;
use super::hdm_lock::{DecoderLock, HdmLockError, LockStep, lock_decoder0};
use super::overlay::Overlay;
use crate::backend::{Backend, BackendError, MmapSource, ResetKind, Result};
use crate::regs::hdm::{DecoderCtrl, DecoderReg};

/// A dword-only register file standing in for a v2 COMP_REGS region.
struct Fake {
    words: Mutex<Vec<u32>>,
    fail: AtomicBool,
    log: Mutex<Vec<(u64, u32)>>,
}

impl Fake {
    fn new(dwords: usize) -> Arc<Self> {
        Arc::new(Self {
            words: Mutex::new(vec![0; dwords]),
            fail: AtomicBool::new(false),
            log: Mutex::new(vec![]),
        })
    }
    fn set(&self, off: u64, v: u32) {
        self.words.lock().unwrap()[(off / 4) as usize] = v;
    }
    fn get(&self, off: u64) -> u32 {
        self.words.lock().unwrap()[(off / 4) as usize]
    }
}

impl Backend for Fake {
    fn device_info(&self) -> Result<Vec<u8>> {
        Err(BackendError::errno("info", libc::ENOTTY))
    }
    fn region_info(&self, _: u32) -> Result<Vec<u8>> {
        Err(BackendError::errno("info", libc::ENOTTY))
    }
    fn read(&self, _r: u64, off: u64, buf: &mut [u8]) -> Result<usize> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError::errno("read", libc::EIO));
        }
        assert!(
            buf.len() == 4 && off.is_multiple_of(4),
            "fake only takes dwords"
        );
        buf.copy_from_slice(&self.get(off).to_le_bytes());
        Ok(4)
    }
    fn write(&self, _r: u64, off: u64, buf: &[u8]) -> Result<usize> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BackendError::errno("write", libc::EIO));
        }
        assert!(
            buf.len() == 4 && off.is_multiple_of(4),
            "fake only takes dwords"
        );
        let v = u32::from_le_bytes(buf.try_into().unwrap());
        self.log.lock().unwrap().push((off, v));
        self.set(off, v);
        Ok(4)
    }
    fn mmap_source(&self, _: u64) -> Result<MmapSource<'_>> {
        Err(BackendError::Invalid("no mmap".into()))
    }
    fn reset(&self, _: ResetKind) -> Result<()> {
        Ok(())
    }
}

/// v2-shaped: region starts at block + 0x1000, HDM at region 0x200, one decoder.
fn v2_overlay() -> (Arc<Fake>, Overlay) {
    let fake = Fake::new(0x230 / 4);
    fake.set(0, 0x0211_0001);
    fake.set(8, 0x2001_0005);
    let regs = CompRegs::new(fake.clone(), 10 << 40, 0x230, 0x1000);
    (fake, Overlay::new(regs, 0x1200, 1))
}

#[test]
fn reads_of_every_size_come_from_dwords() {
    let (fake, ov) = v2_overlay();
    fake.set(0x10, 0x1122_3344);
    fake.set(0x14, 0x5566_7788);
    let mut b8 = [0u8; 8];
    ov.read(0x1010, &mut b8);
    assert_eq!(u64::from_le_bytes(b8), 0x5566_7788_1122_3344);
    let mut b2 = [0u8; 2];
    ov.read(0x1012, &mut b2);
    assert_eq!(u16::from_le_bytes(b2), 0x1122);
    let mut b1 = [0u8; 1];
    ov.read(0x1013, &mut b1);
    assert_eq!(b1[0], 0x11);
    // below the v2 region: CXL.io part reads 0; beyond: all-ones
    let mut b4 = [0u8; 4];
    ov.read(0x0ff0, &mut b4);
    assert_eq!(b4, [0; 4]);
    ov.read(0x1230, &mut b4);
    assert_eq!(b4, [0xFF; 4]);
    // misaligned and odd sizes: all-ones, never touching the backend
    for (off, len) in [
        (0x1011, 4),
        (0x1012, 8),
        (0x1010, 3),
        (0x1010, 16),
        (0xFFFC, 8),
        (u64::MAX, 4),
    ] {
        let mut b = vec![0u8; len];
        ov.read(off, &mut b);
        assert!(b.iter().all(|&x| x == 0xFF), "{off:#x}/{len}");
    }
}

#[test]
fn writes_follow_the_rules() {
    let (fake, ov) = v2_overlay();
    ov.write(0x1204, &7u32.to_le_bytes());
    assert_eq!(fake.get(0x204), 7);
    ov.write(0x1210, &0xAAAA_BBBB_CCCC_DDDDu64.to_le_bytes());
    assert_eq!(
        fake.log.lock().unwrap()[1..],
        [(0x210, 0xCCCC_DDDD), (0x214, 0xAAAA_BBBB)]
    );
    let n = fake.log.lock().unwrap().len();
    for (off, data) in [
        (0x1205, vec![1u8; 4]),
        (0x1204, vec![1u8; 2]),
        (0x1204, vec![1u8; 1]),
        (0x0100, vec![1; 4]),
    ] {
        ov.write(off, &data);
    }
    ov.write(0x1230, &[1; 4]);
    assert_eq!(
        fake.log.lock().unwrap().len(),
        n,
        "dropped writes reached the backend"
    );
    assert_eq!(ov.stats.dropped_writes.load(Ordering::Relaxed), 5);
}

#[test]
fn locked_decoder_and_fence_are_enforced() {
    let (fake, ov) = v2_overlay();
    ov.protect_decoder(0);
    for r in DecoderReg::ALL {
        ov.write(0x1200 + r.at(0), &0u32.to_le_bytes());
    }
    assert!(fake.log.lock().unwrap().is_empty());
    ov.write(0x1204, &2u32.to_le_bytes()); // global control is not a decoder register
    assert_eq!(fake.get(0x204), 2);
    // ...but HDM Decoder Enable stays set while a decoder is locked; the other bits
    // (Poison On Decode Error Enable) are the guest's.
    ov.write(0x1204, &0u32.to_le_bytes());
    assert_eq!(fake.get(0x204), 2);
    ov.write(0x1204, &1u32.to_le_bytes());
    assert_eq!(fake.get(0x204), 3);
    ov.write(0x1200, &(1u64 << 32).to_le_bytes()); // 8-byte write over cap + control
    assert_eq!(fake.get(0x204), 3);
    ov.write(0x1204, &2u32.to_le_bytes());
    ov.set_fenced(true);
    let mut b = [0u8; 4];
    ov.read(0x1000, &mut b);
    assert_eq!(b, [0xFF; 4]);
    ov.write(0x1204, &0u32.to_le_bytes());
    assert_eq!(fake.get(0x204), 2);
}

#[test]
fn backend_errors_read_all_ones_and_drop_writes() {
    let (fake, ov) = v2_overlay();
    fake.fail.store(true, Ordering::SeqCst);
    let mut b = [0u8; 4];
    ov.read(0x1000, &mut b);
    assert_eq!(b, [0xFF; 4]);
    ov.write(0x1204, &5u32.to_le_bytes());
    fake.fail.store(false, Ordering::SeqCst);
    assert_eq!(fake.get(0x204), 0);
    assert_eq!(ov.stats.errors.load(Ordering::Relaxed), 2);
}

/// Which writes of a [`Hw`] fail (counted from when the policy is set, 1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteFault {
    None,
    /// Only the n-th write fails.
    Once(u32),
    /// The n-th write and every later one fail.
    From(u32),
}

/// Plain register file with hardware-like COMMIT → COMMITTED and write faults.
struct Hw(Arc<Fake>, Mutex<(WriteFault, u32)>);
impl Hw {
    fn new(f: Arc<Fake>) -> Self {
        Self(f, Mutex::new((WriteFault::None, 0)))
    }
    fn faults(&self, f: WriteFault) {
        *self.1.lock().unwrap() = (f, 0);
    }
}
impl super::hdm_lock::DwordIo for Hw {
    fn read(&self, o: u64) -> std::result::Result<u32, BackendError> {
        Ok(self.0.get(o))
    }
    fn write(&self, o: u64, v: u32) -> std::result::Result<(), BackendError> {
        {
            let mut st = self.1.lock().unwrap();
            st.1 += 1;
            let fail = match st.0 {
                WriteFault::None => false,
                WriteFault::Once(n) => st.1 == n,
                WriteFault::From(n) => st.1 >= n,
            };
            if fail {
                return Err(BackendError::errno("pwrite", libc::EIO));
            }
        }
        let v = if o == 0x20 {
            DecoderCtrl::from_bits(v)
                .with_committed(v & (1 << 9) != 0)
                .into_bits()
        } else {
            v
        };
        self.0.set(o, v);
        Ok(())
    }
}

#[test]
fn lock_sequence_programs_and_verifies() {
    let hw = Hw::new(Fake::new(0x30 / 4));
    let g = 256u64 << 20;
    hw.0.set(0x18, 0x2000_0000); // size 512 MiB
    hw.0.set(
        0x20,
        DecoderCtrl::new()
            .with_commit(true)
            .with_committed(true)
            .with_lock_on_commit(true)
            .into_bits(),
    );
    let st = lock_decoder0(&hw, 0, 0x3_1000_0000, 2 * g).unwrap();
    assert_eq!(st.base, 0x3_1000_0000);
    assert!(st.committed && st.locked && st.hdm_enabled && st.device_coherent);
    assert!(matches!(
        lock_decoder0(&hw, 0, 0x3_1000_0001, 2 * g),
        Err(HdmLockError::Misaligned(_))
    ));
    assert!(matches!(
        lock_decoder0(&hw, 0, 0x3_1000_0000, 4 * g),
        Err(HdmLockError::TooSmall { .. })
    ));
    hw.0.set(0x20, 0);
    assert!(matches!(
        lock_decoder0(&hw, 0, 0x3_1000_0000, g),
        Err(HdmLockError::NotCommitted { .. })
    ));
}

fn committed_hw() -> Hw {
    let hw = Hw::new(Fake::new(0x30 / 4));
    hw.0.set(0x18, 0x2000_0000); // size 512 MiB
    hw.0.set(
        0x20,
        DecoderCtrl::new()
            .with_ig(2)
            .with_commit(true)
            .with_committed(true)
            .into_bits(),
    );
    hw
}

#[test]
fn each_failed_write_names_its_step_and_is_rolled_back() {
    let g = 256u64 << 20;
    let steps = [
        LockStep::Decommit,
        LockStep::BaseLo,
        LockStep::BaseHi,
        LockStep::SizeLo,
        LockStep::SizeHi,
        LockStep::Commit,
        LockStep::HdmEnable,
    ];
    for (i, want) in steps.into_iter().enumerate() {
        let hw = committed_hw();
        let fw = hw.0.get(0x20);
        hw.faults(WriteFault::Once(i as u32 + 1));
        let mut lock = DecoderLock::new();
        match lock.lock(&hw, 0, 0x3_1000_0000, 2 * g) {
            Err(HdmLockError::Step { step, .. }) => assert_eq!(step, want),
            other => panic!("write {i}: {other:?}"),
        }
        // Rolled back: committed again with firmware's fields, base as before.
        assert_eq!(hw.0.get(0x20), fw, "{want}");
        assert_eq!(hw.0.get(0x10), 0, "{want}");
        assert!(!lock.is_interrupted(), "{want}");
        let st = lock.lock(&hw, 0, 0x3_1000_0000, 2 * g).unwrap();
        assert!(
            st.committed && st.locked && st.base == 0x3_1000_0000,
            "{want}"
        );
        assert_eq!(DecoderCtrl::from_bits(st.ctrl).ig(), 2, "{want}");
    }
}

#[test]
fn interrupted_lock_resumes_and_a_fresh_lock_refuses() {
    let g = 256u64 << 20;
    let win = 0x3_1000_0000;
    let hw = committed_hw();
    let mut lock = DecoderLock::new();
    // The decommit goes through, every later write (and so the rollback) fails.
    hw.faults(WriteFault::From(2));
    assert!(lock.lock(&hw, 0, win, 2 * g).is_err());
    assert!(!DecoderCtrl::from_bits(hw.0.get(0x20)).committed());
    assert!(lock.is_interrupted());
    hw.faults(WriteFault::None);
    // Another lock without that memory (another process) refuses the decoder...
    assert!(matches!(
        DecoderLock::new().lock(&hw, 0, win, 2 * g),
        Err(HdmLockError::NotCommitted { .. })
    ));
    // ...the one that decommitted it re-commits firmware's decoder.
    let st = lock.lock(&hw, 0, win, 2 * g).unwrap();
    assert!(st.committed && st.locked && st.base == win);
    assert_eq!(st.size, 0x2000_0000);
    assert_eq!(DecoderCtrl::from_bits(st.ctrl).ig(), 2);
    assert!(!lock.is_interrupted());
    // Interrupted again, but then the kernel refreshed its view from hardware (v2
    // reset): the uncommitted decoder is hardware's answer and refused.
    hw.faults(WriteFault::From(2));
    assert!(lock.lock(&hw, 0, win, 2 * g).is_err());
    hw.faults(WriteFault::None);
    lock.hardware_refreshed();
    assert!(matches!(
        lock.lock(&hw, 0, win, 2 * g),
        Err(HdmLockError::NotCommitted { .. })
    ));
}

#[test]
fn read_back_mismatch_names_the_check() {
    struct NoLock(Hw);
    impl super::hdm_lock::DwordIo for NoLock {
        fn read(&self, o: u64) -> std::result::Result<u32, BackendError> {
            self.0.read(o)
        }
        fn write(&self, o: u64, v: u32) -> std::result::Result<(), BackendError> {
            self.0.write(o, if o == 0x20 { v & !(1 << 8) } else { v })
        }
    }
    let io = NoLock(committed_hw());
    let e = lock_decoder0(&io, 0, 0x3_1000_0000, 256 << 20).unwrap_err();
    assert!(e.to_string().contains("LOCK is clear"), "{e}");
}
