//! The guest program, generated at run time with iced-x86's assembler (pure: no I/O).
//!
//! A program is a list of [`Step`]s run in order in 64-bit long mode at CPL 3
//! (identity mapped, interrupts off, no stack use, IOPL 3 for its port writes). Step `i` writes its results into the eight qwords at
//! `RESULTS_GPA + 64 * i`; qword 7 becomes `STEP_DONE ^ i` when the step finished, so
//! the host can tell a step that ran from one that did not. After the last step the
//! guest writes [`DONE_MAGIC`] after the step records and signals on [`DONE_PORT`], where
//! the host stops running it.
//!
//! Time is measured with `lfence; rdtsc` (stores drained with `mfence` first), in TSC
//! cycles: only ratios between measurements are meaningful.

use iced_x86::IcedError;
use iced_x86::code_asm::*;

use super::layout::{CODE_GPA, CODE_MAX, RESULTS_GPA, RESULTS_SIZE, SAMPLES_GPA, SAMPLES_SIZE};
use cxl_passthrough::regs::hdm::{DecoderCtrl, DecoderReg, HDM_LO_RESERVED_MASK};

/// I/O port a [`Step::Checkpoint`] writes its id to.
pub const CHECKPOINT_PORT: u16 = 0xE8;
/// I/O port the guest writes to when it has finished.
pub const DONE_PORT: u16 = 0xE9;
/// Written after the last step record when the program finished.
pub const DONE_MAGIC: u64 = 0xC0DE_D0E5_CAFE_F00D;
/// XORed with the step index in qword 7 of each finished step's record.
pub const STEP_DONE: u64 = 0x57E9_D0E5_0000_0000;
/// Qwords per step record.
pub const RECORD_QWORDS: usize = 8;

/// The value a pattern holds at byte offset `offset` (qword aligned) of its range.
pub const fn pattern(offset: u64, seed: u64) -> u64 {
    offset ^ seed
}

/// One thing the guest does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Stops at an `out` to [`CHECKPOINT_PORT`] with this id; the host acts, the guest
    /// continues. No results.
    Checkpoint(u8),
    /// Reads HDM decoder `n` (its BASE_LO at `regs_gpa`) with dword loads, the way a
    /// driver does, and checks BASE = `base`, SIZE = `size`, COMMITTED and LOCK set.
    /// Results: 0 base, 1 size, 2 ctrl, 3 all checks passed (1/0).
    CheckDecoder {
        /// GPA of the decoder's BASE_LO register.
        regs_gpa: u64,
        /// Expected base.
        base: u64,
        /// Expected size.
        size: u64,
    },
    /// Compares the qword at every `stride` bytes of `gpa..gpa+len` with
    /// [`pattern`]`(offset, seed)`. Results: 0 mismatches, 1 first bad offset + 1 (0 if none).
    VerifyPattern {
        /// Start.
        gpa: u64,
        /// Length.
        len: u64,
        /// Distance between checked qwords (multiple of 8).
        stride: u64,
        /// Pattern seed.
        seed: u64,
    },
    /// Writes [`pattern`]`(offset, seed)` to every qword of `gpa..gpa+len`.
    /// Results: 0 cycles taken.
    FillPattern {
        /// Start.
        gpa: u64,
        /// Length (multiple of 8).
        len: u64,
        /// Pattern seed.
        seed: u64,
    },
    /// Reads the qword at `gpa`, then writes `value` there if one is given.
    /// Results: 0 value read.
    Touch {
        /// Address.
        gpa: u64,
        /// Value written (None: read only).
        value: Option<u64>,
    },
    /// Compares two ranges' bandwidth: one untimed write of each, then `passes` rounds
    /// of a timed `rep stosq` over `a`, over `b`, a timed read sweep of `a`, of `b`
    /// (interleaved, so drift on the host hits both alike). Results: fewest cycles for
    /// 0 write `a`, 1 write `b`, 2 read `a`, 3 read `b`; 4 read checksum. Every round's
    /// four timings are also kept as samples (see [`GuestProgram::samples`]).
    Bandwidth {
        /// First range (the reference, e.g. RAM).
        a: u64,
        /// Second range (e.g. the window).
        b: u64,
        /// Length of each (multiple of 32).
        len: u64,
        /// Timed rounds (at least 1).
        passes: u32,
    },
    /// Compares the cost of trapped dword loads from two registers: `rounds` rounds of
    /// `count` loads from `a` then `count` loads from `b` (interleaved, like
    /// [`Step::Bandwidth`]). Results: fewest cycles per round for 0 `a`, 1 `b`; last value
    /// read from 2 `a`, 3 `b`. Every round's two timings are also kept as samples.
    TrapCost {
        /// First register (the reference, e.g. a no-op device).
        a: u64,
        /// Second register.
        b: u64,
        /// Loads per round (at least 1).
        count: u32,
        /// Rounds (at least 1).
        rounds: u32,
    },
}

/// Why a program cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The assembler refused an instruction.
    #[error("assembling the guest program")]
    Asm(#[from] IcedError),
    /// A step's parameters are unusable.
    #[error("guest step {index}: {why}")]
    BadStep {
        /// Step index.
        index: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// Too many steps for the results area, or the code is too large.
    #[error("guest program too large: {0}")]
    TooLarge(&'static str),
}

/// An assembled program.
#[derive(Clone, Debug)]
pub struct GuestProgram {
    /// Machine code, to be loaded at [`CODE_GPA`].
    pub code: Vec<u8>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Per step: where its per-round timing samples are (`gpa`, qwords), if it has any.
    pub samples: Vec<Option<(u64, usize)>>,
}

impl GuestProgram {
    /// GPA of the [`DONE_MAGIC`] qword.
    #[cfg(test)]
    pub fn done_gpa(&self) -> u64 {
        results_gpa(self.steps.len())
    }
}

/// GPA of step `i`'s record.
pub const fn results_gpa(i: usize) -> u64 {
    RESULTS_GPA + (i * RECORD_QWORDS * 8) as u64
}

/// Assembles `steps` into a program.
pub fn assemble(steps: &[Step]) -> Result<GuestProgram, GuestError> {
    if results_gpa(steps.len()) + 8 > RESULTS_GPA + RESULTS_SIZE {
        return Err(GuestError::TooLarge("too many steps for the results area"));
    }
    let mut a = CodeAssembler::new(64)?;
    let mut samples = Vec::with_capacity(steps.len());
    let mut next_sample = SAMPLES_GPA;
    for (i, step) in steps.iter().enumerate() {
        validate(i, step)?;
        let n = sample_count(step);
        let area = (n > 0).then_some((next_sample, n));
        next_sample += 8 * n as u64;
        if next_sample > SAMPLES_GPA + SAMPLES_SIZE {
            return Err(GuestError::TooLarge("too many timing samples"));
        }
        samples.push(area);
        if let Some((gpa, _)) = area {
            a.mov(r11, gpa)?; // r11: where the step stores its next sample
        }
        emit_step(&mut a, i, step)?;
        a.mov(rdi, results_gpa(i))?;
        a.mov(rax, STEP_DONE ^ i as u64)?;
        a.mov(qword_ptr(rdi + 56), rax)?;
    }
    a.mov(rdi, results_gpa(steps.len()))?;
    a.mov(rax, DONE_MAGIC)?;
    a.mov(qword_ptr(rdi), rax)?;
    a.mov(al, 0u32)?;
    a.out(u32::from(DONE_PORT), al)?;
    let mut halt = a.create_label();
    a.set_label(&mut halt)?;
    a.hlt()?;
    a.jmp(halt)?;
    let code = a.assemble(CODE_GPA)?;
    if code.len() as u64 > CODE_MAX {
        return Err(GuestError::TooLarge("code larger than the code area"));
    }
    Ok(GuestProgram {
        code,
        steps: steps.to_vec(),
        samples,
    })
}

/// Qwords of per-round samples a step stores: for [`Step::Bandwidth`] four per round
/// (write `a`, write `b`, read `a`, read `b`), for [`Step::TrapCost`] two (`a`, `b`).
pub fn sample_count(step: &Step) -> usize {
    match *step {
        Step::Bandwidth { passes, .. } => 4 * passes as usize,
        Step::TrapCost { rounds, .. } => 2 * rounds as usize,
        _ => 0,
    }
}

/// `[r11] = rax; r11 += 8`: keeps one timing sample.
fn keep_sample(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(qword_ptr(r11), rax)?;
    a.add(r11, 8)
}

fn validate(index: usize, step: &Step) -> Result<(), GuestError> {
    let bad = |why| Err(GuestError::BadStep { index, why });
    match *step {
        Step::VerifyPattern { len, stride, .. } if stride == 0 || stride % 8 != 0 || len < 8 => {
            bad("stride must be a non-zero multiple of 8 and len at least 8")
        }
        Step::FillPattern { len, .. } if len == 0 || len % 8 != 0 => {
            bad("len must be a non-zero multiple of 8")
        }
        Step::Bandwidth { len, passes, .. } if len == 0 || len % 32 != 0 || passes == 0 => {
            bad("len must be a non-zero multiple of 32 and passes at least 1")
        }
        Step::TrapCost { count, rounds, .. } if count == 0 || rounds == 0 => {
            bad("count and rounds must be at least 1")
        }
        _ => Ok(()),
    }
}

/// `r13 = TSC` (after earlier instructions and stores completed).
fn tsc_start(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mfence()?;
    a.lfence()?;
    a.rdtsc()?; // edx:eax = TSC
    a.shl(rdx, 32)?;
    a.or(rax, rdx)?;
    a.mov(r13, rax)
}

/// `rax = TSC - r13`.
fn tsc_elapsed(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mfence()?;
    a.lfence()?;
    a.rdtsc()?;
    a.shl(rdx, 32)?;
    a.or(rax, rdx)?;
    a.sub(rax, r13)
}

/// `rep stosq` of zeros over `gpa..gpa+len` (clobbers rdi, rcx, rax).
fn fill_zero(a: &mut CodeAssembler, gpa: u64, len: u64) -> Result<(), IcedError> {
    a.mov(rdi, gpa)?;
    a.mov(rcx, len / 8)?;
    a.xor(eax, eax)?;
    a.rep().stosq() // rcx qwords of rax to [rdi]
}

/// Adds every qword of `gpa..gpa+len` to rbx, four per iteration (clobbers rsi, rcx,
/// r12).
fn read_sweep(a: &mut CodeAssembler, gpa: u64, len: u64) -> Result<(), IcedError> {
    let mut next = a.create_label();
    a.mov(rsi, gpa)?;
    a.mov(r12, len)?;
    a.xor(ecx, ecx)?;
    a.set_label(&mut next)?;
    a.add(rbx, qword_ptr(rsi + rcx))?;
    a.add(rbx, qword_ptr(rsi + rcx + 8))?;
    a.add(rbx, qword_ptr(rsi + rcx + 16))?;
    a.add(rbx, qword_ptr(rsi + rcx + 24))?;
    a.add(rcx, 32)?;
    a.cmp(rcx, r12)?;
    a.jb(next)
}

fn emit_step(a: &mut CodeAssembler, i: usize, step: &Step) -> Result<(), IcedError> {
    let rec = results_gpa(i);
    match *step {
        Step::Checkpoint(id) => {
            a.mov(al, u32::from(id))?;
            a.out(u32::from(CHECKPOINT_PORT), al)?;
        }
        Step::CheckDecoder {
            regs_gpa,
            base,
            size,
        } => {
            let reg = |r: DecoderReg| regs_gpa + r.offset();
            let want_ctrl = DecoderCtrl::new()
                .with_committed(true)
                .with_lock_on_commit(true)
                .into_bits();
            a.xor(r10d, r10d)?; // r10 = 0, the "failed" value
            a.mov(r9d, 1u32)?; // r9 = 1: all checks passed so far
            a.mov(rdi, rec)?;
            for (lo, hi, want, slot) in [
                (DecoderReg::BaseLo, DecoderReg::BaseHi, base, 0),
                (DecoderReg::SizeLo, DecoderReg::SizeHi, size, 8),
            ] {
                a.mov(rsi, reg(lo))?;
                a.mov(eax, dword_ptr(rsi))?; // trapped: LO
                a.and(eax, !HDM_LO_RESERVED_MASK)?; // bits 27:0 are not address bits
                a.mov(rsi, reg(hi))?;
                a.mov(edx, dword_ptr(rsi))?; // trapped: HI (zero-extends into rdx)
                a.shl(rdx, 32)?;
                a.or(rax, rdx)?; // rax = HI:LO
                a.mov(qword_ptr(rdi + slot), rax)?;
                a.mov(rbx, want)?;
                a.cmp(rax, rbx)?;
                a.cmovne(r9, r10)?; // mismatch: r9 = 0
            }
            a.mov(rsi, reg(DecoderReg::Ctrl))?;
            a.mov(eax, dword_ptr(rsi))?; // trapped: CTRL
            a.mov(qword_ptr(rdi + 16), rax)?;
            a.and(eax, want_ctrl)?;
            a.cmp(eax, want_ctrl)?;
            a.cmovne(r9, r10)?; // COMMITTED or LOCK clear: r9 = 0
            a.mov(qword_ptr(rdi + 24), r9)?;
        }
        Step::VerifyPattern {
            gpa,
            len,
            stride,
            seed,
        } => {
            let mut next = a.create_label();
            let mut ok = a.create_label();
            a.mov(rsi, gpa)?;
            a.xor(ecx, ecx)?; // rcx = offset
            a.xor(r9d, r9d)?; // r9 = mismatches
            a.xor(r10d, r10d)?; // r10 = first bad offset + 1
            a.mov(r11, seed)?;
            a.mov(r12, len - 7)?; // last offset a whole qword fits at, + 1
            a.mov(r14, stride)?;
            a.set_label(&mut next)?;
            a.mov(rax, qword_ptr(rsi + rcx))?;
            a.mov(rdx, rcx)?;
            a.xor(rdx, r11)?; // rdx = pattern(offset, seed)
            a.cmp(rax, rdx)?;
            a.je(ok)?;
            a.inc(r9)?;
            a.test(r10, r10)?;
            a.jnz(ok)?;
            a.lea(r10, qword_ptr(rcx + 1))?;
            a.set_label(&mut ok)?;
            a.add(rcx, r14)?;
            a.cmp(rcx, r12)?;
            a.jb(next)?;
            a.mov(rdi, rec)?;
            a.mov(qword_ptr(rdi), r9)?;
            a.mov(qword_ptr(rdi + 8), r10)?;
        }
        Step::FillPattern { gpa, len, seed } => {
            let mut next = a.create_label();
            a.mov(rsi, gpa)?;
            a.xor(ecx, ecx)?;
            a.mov(r11, seed)?;
            a.mov(r12, len)?;
            tsc_start(a)?;
            a.set_label(&mut next)?;
            a.mov(rax, rcx)?;
            a.xor(rax, r11)?;
            a.mov(qword_ptr(rsi + rcx), rax)?;
            a.add(rcx, 8)?;
            a.cmp(rcx, r12)?;
            a.jb(next)?;
            tsc_elapsed(a)?;
            a.mov(rdi, rec)?;
            a.mov(qword_ptr(rdi), rax)?;
        }
        Step::Touch { gpa, value } => {
            a.mov(rsi, gpa)?;
            a.mov(rax, qword_ptr(rsi))?;
            if let Some(v) = value {
                a.mov(rdx, v)?;
                a.mov(qword_ptr(rsi), rdx)?;
            }
            a.mov(rdi, rec)?;
            a.mov(qword_ptr(rdi), rax)?;
        }
        Step::Bandwidth {
            a: ga,
            b: gb,
            len,
            passes,
        } => {
            let asm = &mut *a;
            let mut round = asm.create_label();
            for gpa in [ga, gb] {
                fill_zero(asm, gpa, len)?; // warm-up: first touch is not timed
            }
            for min in [r15, r8, r9, r10] {
                asm.mov(min, u64::MAX)?;
            }
            asm.xor(ebx, ebx)?; // read checksum
            asm.mov(r14d, passes)?;
            asm.set_label(&mut round)?;
            for (gpa, min) in [(ga, r15), (gb, r8)] {
                tsc_start(asm)?;
                fill_zero(asm, gpa, len)?;
                tsc_elapsed(asm)?;
                keep_sample(asm)?;
                asm.cmp(rax, min)?;
                asm.cmovb(min, rax)?; // keep the fastest pass
            }
            for (gpa, min) in [(ga, r9), (gb, r10)] {
                tsc_start(asm)?;
                read_sweep(asm, gpa, len)?;
                tsc_elapsed(asm)?;
                keep_sample(asm)?;
                asm.cmp(rax, min)?;
                asm.cmovb(min, rax)?;
            }
            asm.dec(r14d)?;
            asm.jnz(round)?;
            asm.mov(rdi, rec)?;
            for (k, r) in [r15, r8, r9, r10, rbx].into_iter().enumerate() {
                asm.mov(qword_ptr(rdi + 8 * k as i32), r)?;
            }
        }
        Step::TrapCost {
            a: ga,
            b: gb,
            count,
            rounds,
        } => {
            let mut round = a.create_label();
            a.mov(r15, u64::MAX)?; // fewest cycles, a
            a.mov(r8, u64::MAX)?; // fewest cycles, b
            a.mov(r12d, rounds)?;
            a.set_label(&mut round)?;
            for (gpa, min, last) in [(ga, r15, r9), (gb, r8, r10)] {
                let mut next = a.create_label();
                a.mov(rsi, gpa)?;
                a.mov(r14d, count)?;
                tsc_start(a)?;
                a.set_label(&mut next)?;
                a.mov(ebx, dword_ptr(rsi))?; // trapped
                a.dec(r14d)?;
                a.jnz(next)?;
                tsc_elapsed(a)?;
                keep_sample(a)?;
                a.mov(last, rbx)?;
                a.cmp(rax, min)?;
                a.cmovb(min, rax)?;
            }
            a.dec(r12d)?;
            a.jnz(round)?;
            a.mov(rdi, rec)?;
            for (k, r) in [r15, r8, r9, r10].into_iter().enumerate() {
                a.mov(qword_ptr(rdi + 8 * k as i32), r)?;
            }
        }
    }
    Ok(())
}

/// One step's record as the guest left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Result qwords 0..7 (meaning per [`Step`]).
    pub values: [u64; RECORD_QWORDS - 1],
    /// The step finished.
    pub done: bool,
}

/// Decodes the results area (`bytes` read from [`RESULTS_GPA`]): one record per step
/// and whether the program finished. Short input yields unfinished records.
pub fn decode_results(bytes: &[u8], steps: usize) -> (Vec<Record>, bool) {
    let qword = |i: usize| {
        bytes
            .get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let records = (0..steps)
        .map(|s| {
            let mut values = [0u64; RECORD_QWORDS - 1];
            for (k, v) in values.iter_mut().enumerate() {
                *v = qword(s * RECORD_QWORDS + k).unwrap_or(0);
            }
            let done = qword(s * RECORD_QWORDS + RECORD_QWORDS - 1) == Some(STEP_DONE ^ s as u64);
            Record { values, done }
        })
        .collect();
    (records, qword(steps * RECORD_QWORDS) == Some(DONE_MAGIC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_every_step_kind() {
        let steps = vec![
            Step::Checkpoint(3),
            Step::CheckDecoder {
                regs_gpa: 0xE000_1210,
                base: 1 << 32,
                size: 256 << 20,
            },
            Step::VerifyPattern {
                gpa: 1 << 32,
                len: 1 << 20,
                stride: 4096,
                seed: 7,
            },
            Step::FillPattern {
                gpa: 1 << 32,
                len: 4096,
                seed: 9,
            },
            Step::Touch {
                gpa: 0x1000,
                value: Some(5),
            },
            Step::Bandwidth {
                a: 0x100_0000,
                b: 1 << 32,
                len: 1 << 20,
                passes: 2,
            },
            Step::TrapCost {
                a: 0xFEB0_0000,
                b: 0xE000_0000,
                count: 10,
                rounds: 2,
            },
        ];
        let p = assemble(&steps).unwrap();
        assert!(p.code.len() > 100 && (p.code.len() as u64) < CODE_MAX);
        assert_eq!(p.steps, steps);
        // The program ends with `out DONE_PORT, al; hlt; jmp hlt`.
        let tail = &p.code[p.code.len() - 5..];
        assert_eq!(tail, &[0xE6, DONE_PORT as u8, 0xF4, 0xEB, 0xFD]);
        assert_eq!(p.done_gpa(), RESULTS_GPA + 7 * 64);
    }

    #[test]
    fn rejects_unusable_steps() {
        for s in [
            Step::VerifyPattern {
                gpa: 0,
                len: 64,
                stride: 12,
                seed: 0,
            },
            Step::FillPattern {
                gpa: 0,
                len: 12,
                seed: 0,
            },
            Step::Bandwidth {
                a: 0,
                b: 0,
                len: 64,
                passes: 0,
            },
            Step::TrapCost {
                a: 0,
                b: 0,
                count: 1,
                rounds: 0,
            },
        ] {
            assert!(matches!(
                assemble(&[s]),
                Err(GuestError::BadStep { index: 0, .. })
            ));
        }
        let many = vec![Step::Checkpoint(0); 2000];
        assert!(matches!(assemble(&many), Err(GuestError::TooLarge(_))));
    }

    #[test]
    fn decodes_records_and_completion() {
        let mut bytes = vec![0u8; 3 * 64 + 8];
        bytes[0..8].copy_from_slice(&42u64.to_le_bytes());
        bytes[56..64].copy_from_slice(&STEP_DONE.to_le_bytes());
        bytes[64 + 56..128].copy_from_slice(&(STEP_DONE ^ 7).to_le_bytes());
        let (recs, done) = decode_results(&bytes, 2);
        assert_eq!(recs[0].values[0], 42);
        assert!(recs[0].done);
        assert!(!recs[1].done, "wrong step index in the marker");
        assert!(!done);
        bytes[128..136].copy_from_slice(&DONE_MAGIC.to_le_bytes());
        assert!(decode_results(&bytes, 2).1);
        let (recs, done) = decode_results(&bytes[..10], 2);
        assert!(!recs[0].done && !done);
    }
}
