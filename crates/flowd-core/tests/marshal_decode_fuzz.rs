//! `flowd_core::marshal::decode` on hostile frames: random and mutated encodings never panic, and
//! never make it hold more memory than the frame's length allows.
//!
//! A deterministic mutation loop (seeded, so a failure reproduces) over valid encodings and
//! random bytes, bounded to a few seconds. A dedicated test binary, because it replaces the
//! global allocator with one that counts, per thread, the bytes held and their peak.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use flowd_core::marshal::{decode, to_vec, DecodeLimits, MAX_BIGINT_DIGITS};
use flowd_core::PyValue;

// --------------------------------------------------------------------------- counting allocator

struct CountingAllocator;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation(size: usize) {
    // `try_with`: the thread's counters may already be gone while it exits.
    let _ = HELD.try_with(|held| {
        let now = held.get() + size;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn count_release(size: usize) {
    let _ = HELD.try_with(|held| held.set(held.get().saturating_sub(size)));
}

// SAFETY: every call goes to `System` unchanged; only thread-local counters are updated.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation(layout.size());
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_release(layout.size());
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation(new_size);
        count_release(layout.size());
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The most bytes `decode` held at once on this thread while decoding `frame`, beyond what was
/// held before.
fn peak_while_decoding(frame: &[u8]) -> usize {
    let before = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let result = decode(frame, DecodeLimits::default());
    drop(result);
    PEAK.with(Cell::get) - before
}

/// What a frame of `len` bytes may make the decoder hold: each byte yields at most one value
/// (a dict entry is two values for at least two bytes), and a vector's growth may double what
/// its items need; plus a constant for the scratch of a long int's conversion to decimal.
fn allowance(len: usize) -> usize {
    const SCRATCH: usize = 16 * 1024;
    2 * std::mem::size_of::<PyValue>() * len + len + SCRATCH
}

// --------------------------------------------------------------------------- frames

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const TYPE_CODES: &[u8] = b"NTFilgutsS[({0<>)rcz";

fn random_value(rng: &mut Rng, depth: usize) -> PyValue {
    let choices = if depth == 0 { 7 } else { 10 };
    match rng.below(choices) {
        0 => PyValue::None,
        1 => PyValue::Bool(rng.chance(2)),
        2 => PyValue::Int(rng.next() as i64 >> rng.below(64)),
        3 => PyValue::BigInt(format!("{}{}", rng.next(), rng.next())),
        4 => PyValue::Float(f64::from_bits(rng.next())),
        5 => PyValue::Str("héllo wörld €".chars().take(rng.below(14)).collect()),
        6 => PyValue::Bytes((0..rng.below(12)).map(|_| rng.byte()).collect()),
        7 => PyValue::List(random_items(rng, depth)),
        8 => PyValue::Tuple(random_items(rng, depth)),
        _ => PyValue::Dict(
            (0..rng.below(4))
                .map(|_| (random_value(rng, 0), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

fn random_items(rng: &mut Rng, depth: usize) -> Vec<PyValue> {
    (0..rng.below(5))
        .map(|_| random_value(rng, depth - 1))
        .collect()
}

/// Lengths and counts that find off-by-one and overflow mistakes.
fn interesting_u32(rng: &mut Rng, frame_len: usize) -> u32 {
    let near = frame_len as u32;
    [
        0,
        1,
        near.wrapping_sub(1),
        near,
        near + 1,
        0x7FFF_FFFF,
        0x8000_0000,
        u32::MAX,
        MAX_BIGINT_DIGITS as u32,
        MAX_BIGINT_DIGITS as u32 + 1,
    ][rng.below(10)]
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(frame.len() + 1);
        let last = frame.len().saturating_sub(1);
        match rng.below(8) {
            0 if !frame.is_empty() => frame[at.min(last)] ^= 1 << rng.below(8),
            1 if !frame.is_empty() => frame[at.min(last)] = rng.byte(),
            2 => frame.insert(at, TYPE_CODES[rng.below(TYPE_CODES.len())]),
            3 => {
                let value = interesting_u32(rng, frame.len()).to_le_bytes();
                let end = (at + 4).min(frame.len());
                frame.splice(at..end, value);
            }
            4 => frame.truncate(at),
            5 => {
                let end = (at + rng.below(8)).min(frame.len());
                frame.drain(at..end);
            }
            6 => {
                let end = (at + rng.below(16)).min(frame.len());
                let chunk = frame[at..end].to_vec();
                frame.splice(at..at, chunk);
            }
            _ => frame.extend((0..rng.below(6)).map(|_| rng.byte())),
        }
    }
}

fn random_frame(rng: &mut Rng) -> Vec<u8> {
    (0..rng.below(64))
        .map(|_| {
            if rng.chance(2) {
                TYPE_CODES[rng.below(TYPE_CODES.len())]
            } else {
                rng.byte()
            }
        })
        .collect()
}

/// Decodes `frame`, failing the test with the frame in hex if the decoder panics or holds more
/// than the allowance.
fn check(frame: &[u8], case: &str) {
    let peak = catch_unwind(AssertUnwindSafe(|| peak_while_decoding(frame)))
        .unwrap_or_else(|_| panic!("decode panicked on {case}: {}", hex(frame)));
    assert!(
        peak <= allowance(frame.len()),
        "decode held {peak} bytes for a frame of {} ({case}): {}",
        frame.len(),
        hex(frame)
    );
}

fn hex(frame: &[u8]) -> String {
    frame.iter().map(|byte| format!("{byte:02x}")).collect()
}

// --------------------------------------------------------------------------- tests

const ROUNDS: usize = 100_000;

#[test]
fn mutated_encodings_never_panic_nor_overallocate() {
    let mut rng = Rng(0x5EED_F10D_0000_0001);
    for round in 0..ROUNDS {
        let mut frame = to_vec(&random_value(&mut rng, 3));
        mutate(&mut rng, &mut frame);
        check(&frame, &format!("mutation round {round}"));
    }
}

#[test]
fn random_bytes_never_panic_nor_overallocate() {
    let mut rng = Rng(0x5EED_F10D_0000_0002);
    for round in 0..ROUNDS {
        let frame = random_frame(&mut rng);
        check(&frame, &format!("random round {round}"));
    }
}

#[test]
fn valid_encodings_decode_within_the_allowance() {
    let mut rng = Rng(0x5EED_F10D_0000_0003);
    for round in 0..ROUNDS / 4 {
        let value = random_value(&mut rng, 4);
        let frame = to_vec(&value);
        check(&frame, &format!("valid round {round}"));
        let decoded = decode(&frame, DecodeLimits::default());
        assert!(decoded.is_ok(), "{decoded:?} for {}", hex(&frame));
    }
}

#[test]
fn nested_lists_declaring_more_items_than_they_hold_stay_within_the_allowance() {
    // 60 lists, each declaring as many items as bytes remain after it, innermost empty.
    let depth = 60;
    let mut frame = Vec::new();
    for level in 0..depth {
        let remaining = (depth - level - 1) * 5 + 1;
        frame.push(b'[');
        frame.extend_from_slice(&(remaining as u32).to_le_bytes());
    }
    frame.push(b'N');
    check(&frame, "nested over-declared lists");
}

#[test]
fn the_longest_accepted_int_decodes_within_the_allowance() {
    let mut frame = vec![b'l'];
    frame.extend_from_slice(&(MAX_BIGINT_DIGITS as i32).to_le_bytes());
    for _ in 0..MAX_BIGINT_DIGITS {
        frame.extend_from_slice(&0x7FFFu16.to_le_bytes());
    }
    check(&frame, "the longest int");
}
