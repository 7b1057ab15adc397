//! Operation-sequence model check of every ring kind against a `VecDeque` (used by the fuzz
//! target `queue_ops`, replayed by the root test `tests/fuzz_corpus.rs`, and by unit tests
//! here). Not part of the stable API.
//!
//! The rings: typed SPSC and MPMC rings of `u32` ([`Queue`](crate::typed::Queue)), and byte queues of both
//! flavors ([`ByteQueue`]), all on the heap. The operations: every non-blocking push and pop
//! (and the timed ones with a zero timeout), batches, SPSC chunks committed in part or
//! dropped, byte pops into short buffers, loans committed and dropped, reads in place, `len`,
//! `close`, the recovery calls, and *forgeries*: impossible (or merely wrong) indices, stamps,
//! lengths and state words written into the ring between operations, as another process
//! could.
//!
//! Until the first forgery the ring must agree with the model exactly. After it, every
//! operation must end (a value or an error, never a panic or a hang); once one has reported
//! `Corrupt` the ring must be poisoned and every later push, pop, loan, read and chunk must
//! report `Corrupt` (batches move nothing, `len` is 0). Every sequence ends with a bounded
//! drain: without pushes, pops deliver at most `2 * capacity` values in a row before an error,
//! and without pops, pushes succeed at most `2 * capacity` times in a row (the step bound: a
//! corrupt ring never delivers garbage forever). Unforged, the drain must deliver exactly what the
//! model holds.

use crate::bytes::{
    ByteQueue, BytesConsumer, BytesProducer, BytesPushTimeoutError, BytesTryPushError,
    PopIntoTimeoutError, TryPopIntoError,
};
use crate::error::{PopTimeoutError, PushTimeoutError, TryPopError, TryPushError};
use crate::ring::{Flavor, Ring, CANCELLED};
use crate::typed::{Consumer, Producer};
use crate::{ChunkError, Mpmc, Spsc};
use shm_core::sync::atomic::Ordering;
use std::collections::VecDeque;
use std::time::Duration;

/// What one operation ended with, in one shape for every ring kind.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    /// A push, commit or close that worked.
    Done,
    /// One value popped (a `u32` as its little-endian bytes, or a byte message).
    Val(Vec<u8>),
    /// Values moved by a batch or seen through a chunk.
    Vals(Vec<Vec<u8>>),
    /// Items a batch push moved.
    Moved(usize),
    /// `len`, `is_empty`, `is_full`.
    Len(usize, bool, bool),
    /// SPSC `slots()` of the producer and the consumer.
    Slots(usize, usize),
    /// `skip_dead_push`, `free_dead_pop`.
    Recovered(bool, bool),
    Full,
    Empty,
    Closed,
    Timeout,
    Corrupt,
    Disconnected,
    TooLarge,
    TooSmall(usize),
    TooFew(usize),
}

impl Out {
    /// Whether this is what a poisoned ring may answer to operation `b` (of a byte queue with
    /// maximum `max`, or a typed ring: `None`). Only `close` is still done, and only an
    /// oversized message is still refused for its size.
    fn poisoned_ok(&self, b: u8, max: Option<usize>) -> bool {
        let (code, arg) = (b % 16, usize::from(b >> 4));
        match self {
            Out::Corrupt | Out::Moved(0) | Out::Len(0, true, false) | Out::Slots(0, 0) => true,
            Out::Recovered(..) => true,
            Out::Vals(v) => v.is_empty(),
            Out::Done => code == 14 && arg == 15,
            Out::TooLarge => max.is_some_and(|m| arg > m),
            _ => false,
        }
    }
}

fn try_push_out<T>(r: Result<(), TryPushError<T>>) -> Out {
    match r {
        Ok(()) => Out::Done,
        Err(TryPushError::Full(_)) => Out::Full,
        Err(TryPushError::Closed(_)) => Out::Closed,
        Err(TryPushError::Disconnected(_)) => Out::Disconnected,
        Err(TryPushError::Corrupt(_)) => Out::Corrupt,
    }
}

fn push_timeout_out<T>(r: Result<(), PushTimeoutError<T>>) -> Out {
    match r {
        Ok(()) => Out::Done,
        Err(PushTimeoutError::Timeout(_)) => Out::Timeout,
        Err(PushTimeoutError::Closed(_)) => Out::Closed,
        Err(PushTimeoutError::Disconnected(_)) => Out::Disconnected,
        Err(PushTimeoutError::Corrupt(_)) => Out::Corrupt,
    }
}

fn bytes_push_out<M>(r: Result<(), BytesTryPushError<M>>) -> Out {
    match r {
        Ok(()) => Out::Done,
        Err(BytesTryPushError::TooLarge { .. }) => Out::TooLarge,
        Err(BytesTryPushError::Full(_)) => Out::Full,
        Err(BytesTryPushError::Closed(_)) => Out::Closed,
        Err(BytesTryPushError::Disconnected(_)) => Out::Disconnected,
        Err(BytesTryPushError::Corrupt(_)) => Out::Corrupt,
    }
}

fn try_pop_err(e: TryPopError) -> Out {
    match e {
        TryPopError::Empty => Out::Empty,
        TryPopError::Closed => Out::Closed,
        TryPopError::Disconnected => Out::Disconnected,
        TryPopError::Corrupt => Out::Corrupt,
    }
}

fn pop_timeout_err(e: PopTimeoutError) -> Out {
    match e {
        PopTimeoutError::Timeout => Out::Timeout,
        PopTimeoutError::Closed => Out::Closed,
        PopTimeoutError::Disconnected => Out::Disconnected,
        PopTimeoutError::Corrupt => Out::Corrupt,
    }
}

fn chunk_err(e: ChunkError) -> Out {
    match e {
        ChunkError::TooFew { available } => Out::TooFew(available),
        ChunkError::Closed => Out::Closed,
        ChunkError::Corrupt => Out::Corrupt,
    }
}

fn word(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The ring under test.
enum Rig {
    Spsc(Producer<u32, Spsc>, Consumer<u32, Spsc>),
    Mpmc(Producer<u32, Mpmc>, Consumer<u32, Mpmc>),
    Bytes(ByteQueue, BytesProducer, BytesConsumer),
}

impl Rig {
    fn ring(&self) -> &Ring {
        match self {
            Rig::Spsc(_, c) => c.ring(),
            Rig::Mpmc(_, c) => c.ring(),
            Rig::Bytes(q, ..) => q.ring(),
        }
    }
}

/// The model: what the ring holds (`None`: a cancelled MPMC loan, which takes a position
/// until a consumer passes over it), whether it is closed.
struct Model {
    items: VecDeque<Option<Vec<u8>>>,
    cap: usize,
    max: usize,
    closed: bool,
}

impl Model {
    fn free(&self) -> usize {
        self.cap - self.items.len()
    }

    /// Drops the cancelled loans at the front, as a consumer passes over them.
    fn skip_cancelled(&mut self) {
        while let Some(None) = self.items.front() {
            self.items.pop_front();
        }
    }

    /// A push of `v` (already checked for length): `Done` and queued, or why not.
    fn push(&mut self, v: Option<Vec<u8>>, full: Out) -> Out {
        if self.closed {
            Out::Closed
        } else if self.items.len() == self.cap {
            full
        } else {
            if let Some(v) = v {
                self.items.push_back(Some(v));
            } else {
                self.items.push_back(None);
            }
            Out::Done
        }
    }

    /// A pop into a destination of `room` bytes (`None`: any): the value, or why not.
    fn pop(&mut self, room: Option<usize>, empty: Out) -> Out {
        self.skip_cancelled();
        match self.items.front() {
            Some(Some(v)) if room.is_some_and(|r| r < v.len()) => Out::TooSmall(v.len()),
            Some(Some(_)) => Out::Val(self.items.pop_front().flatten().unwrap_or_default()),
            _ if self.closed => Out::Closed,
            _ => empty,
        }
    }

    fn len(&self) -> Out {
        let n = self.items.len();
        Out::Len(n, n == 0, n == self.cap)
    }
}

/// The message pushed as the `seq`-th of `len` bytes.
fn message(seq: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

/// The next input byte, 0 once the input is used up.
fn take(ops: &[u8], at: &mut usize) -> u8 {
    let b = ops.get(*at).copied().unwrap_or(0);
    *at += 1;
    b
}

/// Runs the operation `b` (see [`check_ops`]) on the ring.
fn run(rig: &mut Rig, b: u8, seq: u32) -> Out {
    let (code, arg) = (b % 16, usize::from(b >> 4));
    let zero = Duration::ZERO;
    match rig {
        Rig::Spsc(..) | Rig::Mpmc(..) => run_typed(rig, code, arg, seq),
        Rig::Bytes(q, tx, rx) => match code {
            0..=2 => bytes_push_out(tx.try_push(message(seq, arg))),
            3 | 13 => rx.try_pop().map_or_else(try_pop_err, Out::Val),
            4 | 10 => {
                let mut buf = vec![0u8; arg];
                let r = if code == 4 {
                    rx.try_pop_into(&mut buf).map_err(|e| match e {
                        TryPopIntoError::TooSmall { needed } => Out::TooSmall(needed),
                        TryPopIntoError::Empty => Out::Empty,
                        TryPopIntoError::Closed => Out::Closed,
                        TryPopIntoError::Disconnected => Out::Disconnected,
                        TryPopIntoError::Corrupt => Out::Corrupt,
                    })
                } else {
                    rx.pop_into_timeout(&mut buf, zero).map_err(|e| match e {
                        PopIntoTimeoutError::TooSmall { needed } => Out::TooSmall(needed),
                        PopIntoTimeoutError::Timeout => Out::Timeout,
                        PopIntoTimeoutError::Closed => Out::Closed,
                        PopIntoTimeoutError::Disconnected => Out::Disconnected,
                        PopIntoTimeoutError::Corrupt => Out::Corrupt,
                    })
                };
                match r {
                    Ok(n) => Out::Val(buf[..n].to_vec()),
                    Err(o) => o,
                }
            }
            5 => Out::Len(q.len(), q.is_empty(), q.len() == q.capacity()),
            6 | 7 => match tx.try_loan(arg) {
                Ok(mut loan) => {
                    loan.copy_from_slice(&message(seq, arg));
                    if code == 6 {
                        if arg % 3 == 0 {
                            loan.truncate(arg / 2);
                        }
                        loan.commit();
                    }
                    Out::Done
                }
                Err(e) => bytes_push_out(Err(e)),
            },
            8 => match rx.try_read() {
                Ok(msg) => Out::Val(msg.to_vec()),
                Err(e) => try_pop_err(e),
            },
            9 => rx.pop_timeout(zero).map_or_else(pop_timeout_err, Out::Val),
            11 => match tx.push_timeout(message(seq, arg), zero) {
                Ok(()) => Out::Done,
                Err(BytesPushTimeoutError::TooLarge { .. }) => Out::TooLarge,
                Err(BytesPushTimeoutError::Timeout(_)) => Out::Timeout,
                Err(BytesPushTimeoutError::Closed(_)) => Out::Closed,
                Err(BytesPushTimeoutError::Disconnected(_)) => Out::Disconnected,
                Err(BytesPushTimeoutError::Corrupt(_)) => Out::Corrupt,
            },
            12 => Out::Recovered(q.ring().skip_dead_push(), q.ring().free_dead_pop()),
            _ if arg == 15 => {
                q.close();
                Out::Done
            }
            _ => Out::Len(q.len(), q.is_empty(), q.len() == q.capacity()),
        },
    }
}

/// Commit counts of the chunk modes: none (dropped), half, all, one too many (clamped).
fn committed(n: usize, mode: usize) -> usize {
    match mode {
        0 => 0,
        1 => n / 2,
        _ => n,
    }
}

fn run_typed(rig: &mut Rig, code: u8, arg: usize, seq: u32) -> Out {
    let zero = Duration::ZERO;
    let k = arg % 6;
    macro_rules! common {
        ($p:expr, $c:expr, $other:expr) => {
            match code {
                0..=2 => try_push_out($p.try_push(seq)),
                3 | 13 => $c.try_pop().map_or_else(try_pop_err, |v| Out::Val(word(v))),
                4 => $c
                    .pop_timeout(zero)
                    .map_or_else(pop_timeout_err, |v| Out::Val(word(v))),
                6 => {
                    let items: Vec<u32> = (seq..seq + k as u32).collect();
                    Out::Moved($p.push_slice(&items))
                }
                7 => {
                    let mut out = vec![0u32; k];
                    let n = $c.pop_slice(&mut out);
                    Out::Vals(out[..n].iter().map(|&v| word(v)).collect())
                }
                11 => push_timeout_out($p.push_timeout(seq, zero)),
                12 => Out::Recovered($c.ring().skip_dead_push(), $c.ring().free_dead_pop()),
                14 if arg == 15 => {
                    $c.close();
                    Out::Done
                }
                _ => $other,
            }
        };
    }
    match rig {
        Rig::Spsc(p, c) => {
            let (n, mode) = (arg % 4, arg / 4);
            match code {
                8 => match p.write_chunk(n) {
                    Ok(mut chunk) => {
                        let (a, b) = chunk.as_mut_slices();
                        for (i, v) in a.iter_mut().chain(b.iter_mut()).enumerate() {
                            *v = seq + i as u32;
                        }
                        let m = committed(n, mode);
                        match mode {
                            0 => drop(chunk),
                            3 => chunk.commit(n + 1),
                            _ => chunk.commit(m),
                        }
                        Out::Vals((0..m as u32).map(|i| word(seq + i)).collect())
                    }
                    Err(e) => chunk_err(e),
                },
                9 => match c.read_chunk(n) {
                    Ok(chunk) => {
                        let (a, b) = chunk.as_slices();
                        let seen = a.iter().chain(b).map(|&v| word(v)).collect();
                        match mode {
                            0 => drop(chunk),
                            3 => chunk.commit(n + 1),
                            _ => chunk.commit(committed(n, mode)),
                        }
                        Out::Vals(seen)
                    }
                    Err(e) => chunk_err(e),
                },
                10 => Out::Slots(p.slots(), c.slots()),
                _ => common!(p, c, Out::Len(c.len(), c.is_empty(), p.is_full())),
            }
        }
        Rig::Mpmc(p, c) => common!(p, c, Out::Len(c.len(), c.is_empty(), p.is_full())),
        Rig::Bytes(..) => unreachable!("typed operations on a byte queue"),
    }
}

/// What the model expects of the operation `b` (and its effect on the model).
fn expect(m: &mut Model, flavor: Flavor, bytes: bool, b: u8, seq: u32) -> Out {
    let (code, arg) = (b % 16, usize::from(b >> 4));
    if bytes {
        let too_large = arg > m.max;
        return match code {
            0..=2 | 6 | 7 | 11 if too_large => Out::TooLarge,
            0..=2 => m.push(Some(message(seq, arg)), Out::Full),
            11 => m.push(Some(message(seq, arg)), Out::Timeout),
            6 => {
                let mut msg = message(seq, arg);
                if arg % 3 == 0 {
                    msg.truncate(arg / 2);
                }
                m.push(Some(msg), Out::Full)
            }
            // A dropped loan: an MPMC ring publishes a cancelled slot, an SPSC ring nothing.
            7 if flavor == Flavor::Mpmc => m.push(None, Out::Full),
            7 if m.closed => Out::Closed,
            7 if m.free() == 0 => Out::Full,
            7 => Out::Done,
            3 | 8 | 13 => m.pop(None, Out::Empty),
            4 => m.pop(Some(arg), Out::Empty),
            9 => m.pop(None, Out::Timeout),
            10 => m.pop(Some(arg), Out::Timeout),
            12 => Out::Recovered(false, false),
            14 if arg == 15 => {
                m.closed = true;
                Out::Done
            }
            _ => m.len(),
        };
    }
    let k = arg % 6;
    let (n, mode) = (arg % 4, arg / 4);
    match code {
        0..=2 => m.push(Some(word(seq)), Out::Full),
        11 => m.push(Some(word(seq)), Out::Timeout),
        3 | 13 => m.pop(None, Out::Empty),
        4 => m.pop(None, Out::Timeout),
        6 => {
            let n = if m.closed { 0 } else { k.min(m.free()) };
            for i in 0..n as u32 {
                m.items.push_back(Some(word(seq + i)));
            }
            Out::Moved(n)
        }
        7 => {
            let n = k.min(m.items.len());
            Out::Vals(m.items.drain(..n).flatten().collect())
        }
        8 if flavor == Flavor::Spsc => {
            if m.closed {
                Out::Closed
            } else if m.free() < n {
                Out::TooFew(m.free())
            } else {
                let c = committed(n, mode);
                let vals: Vec<Vec<u8>> = (0..c as u32).map(|i| word(seq + i)).collect();
                m.items.extend(vals.iter().cloned().map(Some));
                Out::Vals(vals)
            }
        }
        9 if flavor == Flavor::Spsc => {
            let ready = m.items.len();
            if ready < n {
                if ready == 0 && m.closed {
                    Out::Closed
                } else {
                    Out::TooFew(ready)
                }
            } else {
                let seen = m.items.iter().take(n).flatten().cloned().collect();
                m.items.drain(..committed(n, mode));
                Out::Vals(seen)
            }
        }
        10 if flavor == Flavor::Spsc => {
            let free = if m.closed { 0 } else { m.free() };
            Out::Slots(free, m.items.len())
        }
        12 => Out::Recovered(false, false),
        14 if arg == 15 => {
            m.closed = true;
            Out::Done
        }
        _ => m.len(),
    }
}

/// Writes something into the ring, as another process could: `f` picks the target (`f % 6`:
/// `tail`, `head`, the stamp of a slot near `head` or `tail`, a byte slot's length word, the
/// state word or a pending word), `(f / 6) % 8` the value (relative to the indices, or the 8
/// input bytes that follow), `f / 48` the slot's distance from the index.
fn forge(rig: &Rig, f: u8, ops: &[u8], at: &mut usize) {
    let ring = rig.ring();
    let (head, tail) = ring.positions();
    let cap = ring.capacity();
    let (target, mode, k) = (f % 6, (f / 6) % 8, u64::from(f / 48) % 4);
    let raw = if mode == 7 {
        let mut w = [0u8; 8];
        for b in &mut w {
            *b = take(ops, at);
        }
        u64::from_le_bytes(w)
    } else {
        0
    };
    let free = |p: u64| p.wrapping_mul(2);
    let full = |p: u64| p.wrapping_mul(2).wrapping_add(1);
    let is_mpmc = ring.flavor() == Flavor::Mpmc;
    let is_bytes = matches!(rig, Rig::Bytes(..));
    match target {
        0 => {
            let v = [
                u64::MAX,
                tail.wrapping_add(1),
                tail.wrapping_sub(1),
                head.wrapping_add(cap),
                head.wrapping_add(cap + 1),
                head.wrapping_sub(1),
                head,
                raw,
            ][usize::from(mode)];
            ring.forge_index(0, v);
        }
        1 => {
            let v = [
                u64::MAX,
                head.wrapping_add(1),
                head.wrapping_sub(1),
                tail.wrapping_add(1),
                tail.wrapping_sub(cap + 1),
                tail,
                head.wrapping_add(cap),
                raw,
            ][usize::from(mode)];
            ring.forge_index(1, v);
        }
        2 | 3 if is_mpmc => {
            let p = if target == 2 { head } else { tail }.wrapping_add(k);
            let v = [
                u64::MAX,
                free(p),
                full(p),
                free(p.wrapping_add(cap)),
                full(p.wrapping_sub(cap)),
                full(p.wrapping_add(2 * cap)),
                free(p.wrapping_sub(cap)),
                raw,
            ][usize::from(mode)];
            ring.forge_stamp(p, v);
        }
        2..=4 if is_bytes => {
            let p = head.wrapping_add(k);
            let max = ring.max_message() as u32;
            let v = [
                max.wrapping_add(1),
                CANCELLED,
                max,
                0,
                u32::MAX - 1,
                max.wrapping_add(2),
                raw as u32,
                (raw >> 32) as u32,
            ][usize::from(mode)];
            ring.msg_len(p).store(v, Ordering::Release);
        }
        2..=4 => match rig {
            // The typed consumers' own forgeries (see `Consumer::forge_index`).
            Rig::Spsc(_, c) => c.forge_index(mode % 3),
            Rig::Mpmc(_, c) => c.forge_index(mode % 3),
            Rig::Bytes(..) => {}
        },
        _ if mode < 4 => ring.poison(),
        _ => {
            // A stale or forged announcement in the first producer role slot.
            let v = if mode == 7 { raw } else { head.wrapping_add(1) };
            ring.producers()[0].pending().store(v, Ordering::Release);
        }
    }
}

/// Decodes `ops` into operations on one heap ring, runs them on the ring and on a
/// `VecDeque` model, and panics at the first divergence (see the [module docs](self) for what
/// is checked).
///
/// Byte 0 picks the ring: `b % 4` is typed SPSC, typed MPMC, SPSC bytes or MPMC bytes; the
/// capacity is `1 + (b >> 2) % 8`; for bytes, the maximum message is
/// `[0, 1, 2, 3, 5, 8, 13, 16][b >> 5]`. Each later byte is one operation, `b % 16` with the
/// argument `a = b >> 4`:
///
/// | `b % 16` | typed ring | byte queue |
/// |---|---|---|
/// | 0–2 | `try_push` | `try_push` of `a` bytes |
/// | 3, 13 | `try_pop` | `try_pop` |
/// | 4 | `pop_timeout(0)` | `try_pop_into` a buffer of `a` bytes |
/// | 5 | `len`, `is_empty`, `is_full` | the same |
/// | 6 | `push_slice` of `a % 6` | a loan of `a` bytes, committed (truncated when `a % 3 == 0`) |
/// | 7 | `pop_slice` of `a % 6` | a loan of `a` bytes, dropped |
/// | 8 | SPSC `write_chunk(a % 4)`, committing none, half, all, or one too many (`a / 4`) | `try_read` |
/// | 9 | SPSC `read_chunk`, likewise | `pop_timeout(0)` |
/// | 10 | SPSC `slots` of both ends | `pop_into_timeout(0)` |
/// | 11 | `push_timeout(0)` | `push_timeout(0)` |
/// | 12 | `skip_dead_push`, `free_dead_pop` (nobody died: both `false`) | the same |
/// | 14 | `close` if `a == 15`, else `len` | the same |
/// | 15 | forge: the next byte says what (see `forge`) | the same |
///
/// Chunk operations on an MPMC ring are `len` checks.
///
/// # Panics
///
/// When the ring and the model disagree, or a rule for corrupt rings is broken (that is the
/// point).
pub fn check_ops(ops: &[u8]) {
    let Some((&first, _)) = ops.split_first() else {
        return;
    };
    let cap = 1 + usize::from(first >> 2) % 8;
    let max = [0, 1, 2, 3, 5, 8, 13, 16][usize::from(first >> 5)];
    let (mut rig, flavor, bytes) = match first % 4 {
        0 => {
            let (p, c) = crate::typed::heap_pair::<u32, Spsc>(cap, false);
            (Rig::Spsc(p, c), Flavor::Spsc, false)
        }
        1 => {
            let (p, c) = crate::typed::heap_pair::<u32, Mpmc>(cap, false);
            (Rig::Mpmc(p, c), Flavor::Mpmc, false)
        }
        n => {
            let flavor = if n == 2 { Flavor::Spsc } else { Flavor::Mpmc };
            let q = ByteQueue::heap(flavor, cap as u64, max).expect("a valid geometry");
            let (Ok(tx), Ok(rx)) = (q.producer(), q.consumer()) else {
                unreachable!("a fresh heap queue has free roles")
            };
            (Rig::Bytes(q, tx, rx), flavor, true)
        }
    };
    let mut model = Model {
        items: VecDeque::new(),
        cap,
        max,
        closed: false,
    };
    let mut forged = false;
    let mut poisoned = false;
    let mut at = 1;
    let mut seq = 0u32;
    while at < ops.len() {
        let step = at;
        let b = take(ops, &mut at);
        if b % 16 == 15 {
            let f = take(ops, &mut at);
            forge(&rig, f, ops, &mut at);
            forged = true;
            continue;
        }
        let got = run(&mut rig, b, seq);
        if !forged {
            let want = expect(&mut model, flavor, bytes, b, seq);
            assert_eq!(
                got, want,
                "step {step}: op {b:#04x} on {flavor:?} bytes={bytes}"
            );
            assert!(!rig.ring().is_poisoned(), "step {step}: poisoned unforged");
        } else {
            if poisoned {
                assert!(
                    got.poisoned_ok(b, bytes.then_some(max)),
                    "step {step}: op {b:#04x} on a poisoned ring gave {got:?}"
                );
            }
            if got == Out::Corrupt {
                assert!(
                    rig.ring().is_poisoned(),
                    "step {step}: Corrupt, not poisoned"
                );
                poisoned = true;
            }
        }
        seq = seq.wrapping_add(8);
    }
    drain_bounded(&mut rig, &mut model, forged, poisoned);
}

/// The step bound: pops without pushes end in an error within `2 * capacity + 1` calls,
/// pushes without pops likewise (what a side had cached of the other's index, at most a
/// capacity, then at most one capacity more from the index it reads, which nobody moves
/// meanwhile: a forged index is only checked against the reader's own); unforged, the pops deliver exactly the model's items and the pushes
/// fill exactly the capacity (unless closed).
fn drain_bounded(rig: &mut Rig, model: &mut Model, forged: bool, poisoned: bool) {
    let cap = model.cap;
    let mut popped = Vec::new();
    let mut ended = None;
    for _ in 0..=2 * cap {
        match run(rig, 3, 0) {
            Out::Val(v) => popped.push(v),
            o => {
                ended = Some(o);
                break;
            }
        }
    }
    let ended = ended.unwrap_or_else(|| panic!("{} pops without an end", 2 * cap + 1));
    if poisoned {
        assert_eq!(ended, Out::Corrupt, "drain of a poisoned ring");
        assert!(popped.is_empty(), "a poisoned ring delivered {popped:?}");
    }
    if !forged {
        let want: Vec<Vec<u8>> = model.items.drain(..).flatten().collect();
        assert_eq!(popped, want, "drain");
        let end = if model.closed {
            Out::Closed
        } else {
            Out::Empty
        };
        assert_eq!(ended, end, "drain end");
    }
    let mut pushed = 0;
    let mut ended = None;
    for _ in 0..=2 * cap {
        match run(rig, 0, 0) {
            Out::Done => pushed += 1,
            o => {
                ended = Some(o);
                break;
            }
        }
    }
    let ended = ended.unwrap_or_else(|| panic!("{} pushes without an end", 2 * cap + 1));
    if poisoned {
        assert_eq!(
            (pushed, &ended),
            (0, &Out::Corrupt),
            "fill of a poisoned ring"
        );
    }
    if !forged {
        let (n, end) = if model.closed {
            (0, Out::Closed)
        } else {
            (cap, Out::Full)
        };
        assert_eq!((pushed, ended), (n, end), "fill");
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::check_ops;

    /// xorshift bytes.
    fn bytes(x: &mut u64, len: usize, forge_every: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                if forge_every > 0 && (*x >> 20).is_multiple_of(forge_every) {
                    15
                } else {
                    *x as u8
                }
            })
            .collect()
    }

    #[test]
    fn pseudo_random_sequences_agree() {
        let rounds = if cfg!(miri) { 8 } else { 800 };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for r in 0..rounds {
            let mut ops = bytes(&mut x, 1 + (r % 200), 0);
            // No forgeries in these: 15 would forge (13 pops instead).
            for b in ops.iter_mut().skip(1) {
                if *b % 16 == 15 {
                    *b ^= 2;
                }
            }
            check_ops(&ops);
        }
        check_ops(&[]);
        for kind in 0..4 {
            check_ops(&[kind]);
        }
    }

    /// Forged indices, stamps, lengths and state in every ring kind: every sequence ends,
    /// and a poisoned ring stays poisoned (checked inside `check_ops`).
    #[test]
    fn forged_sequences_end_in_values_or_corrupt() {
        let rounds = if cfg!(miri) { 8 } else { 1500 };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for r in 0..rounds {
            let ops = bytes(&mut x, 2 + (r % 120), 23);
            check_ops(&ops);
        }
    }

    /// Each kind of forgery, right after some traffic, on each ring kind.
    #[test]
    fn every_forgery_on_every_ring() {
        for first in [0u8, 1, 2, 3, 0x26, 0x27, 0xe6, 0xe7] {
            for f in 0..=255u8 {
                if cfg!(miri) && f % 37 != 0 {
                    continue;
                }
                let mut ops = vec![first, 0x10, 0x20, 3, 0x30];
                ops.extend([15, f]);
                if f % 48 / 6 == 7 {
                    ops.extend(f.to_le_bytes().repeat(8));
                }
                ops.extend([3, 0x44, 0x16, 0x18, 0x19, 0x27, 5, 0x0c, 3, 0x10, 3]);
                check_ops(&ops);
            }
        }
    }
}

/// Heap rings shared by two threads, so that miri's race detector checks the memory lent in
/// place: chunks, loans and reads in place (no OS calls: non-blocking operations and yields).
#[cfg(all(test, not(loom)))]
mod threaded {
    use crate::bytes::{ByteQueue, Flavor, TryPopIntoError};
    use crate::{spsc, ChunkError, TryPopError};
    use std::thread;

    const N: u32 = if cfg!(miri) { 40 } else { 5000 };

    /// Chunks of 1..=3 written and read in place through a four-slot ring (they wrap), some
    /// committed in part: every committed item arrives once, in order.
    #[test]
    fn chunks_across_threads() {
        let (mut tx, mut rx) = spsc::channel::<u32>(4);
        let t = thread::spawn(move || {
            let mut next = 0u32;
            let mut round = 0usize;
            while next < N {
                round += 1;
                let want = 1 + round % 3;
                match tx.write_chunk(want) {
                    Ok(mut chunk) => {
                        let (a, b) = chunk.as_mut_slices();
                        for (i, v) in a.iter_mut().chain(b.iter_mut()).enumerate() {
                            *v = next + i as u32;
                        }
                        // Every third chunk publishes only its first item.
                        let n = if round.is_multiple_of(3) { 1 } else { want };
                        let n = n.min((N - next) as usize);
                        chunk.commit(n);
                        next += n as u32;
                    }
                    Err(ChunkError::TooFew { .. }) => thread::yield_now(),
                    Err(e) => panic!("write_chunk: {e:?}"),
                }
            }
        });
        let mut expected = 0u32;
        let mut round = 0usize;
        while expected < N {
            round += 1;
            let want = 1 + round % 2;
            match rx.read_chunk(want) {
                Ok(chunk) => {
                    let (a, b) = chunk.as_slices();
                    for &v in a.iter().chain(b) {
                        assert_eq!(v, expected, "in order");
                        expected += 1;
                    }
                    chunk.commit_all();
                }
                Err(ChunkError::TooFew { .. }) => thread::yield_now(),
                Err(e) => panic!("read_chunk: {e:?}"),
            }
        }
        t.join().unwrap();
        assert!(rx.is_empty());
    }

    /// The byte of message `i` at offset `j`.
    fn byte(i: u32, j: usize) -> u8 {
        (i as usize * 7 + j) as u8
    }

    /// Messages written in place through loans (some dropped uncommitted) and read in place
    /// (some popped into buffers too short first), in both flavors: each committed message
    /// arrives once, intact, in order.
    #[test]
    fn loans_and_reads_across_threads() {
        for flavor in [Flavor::Spsc, Flavor::Mpmc] {
            let q = ByteQueue::heap(flavor, 3, 24).unwrap();
            let mut tx = q.producer().unwrap();
            let mut rx = q.consumer().unwrap();
            let t = thread::spawn(move || {
                let mut i = 0u32;
                let mut tries = 0u32;
                while i < N {
                    tries += 1;
                    let len = (i % 25) as usize;
                    match tx.try_loan(len) {
                        Ok(mut loan) => {
                            for (j, b) in loan.iter_mut().enumerate() {
                                *b = byte(i, j);
                            }
                            if tries.is_multiple_of(5) {
                                drop(loan); // cancelled: never delivered
                            } else {
                                loan.commit();
                                i += 1;
                            }
                        }
                        Err(_) => thread::yield_now(),
                    }
                }
            });
            let mut i = 0u32;
            let mut short = [0u8; 4];
            while i < N {
                let len = (i % 25) as usize;
                if i % 4 == 1 {
                    match rx.try_pop_into(&mut short) {
                        Ok(n) => {
                            assert_eq!(n, len);
                            assert!((0..n).all(|j| short[j] == byte(i, j)), "message {i}");
                            i += 1;
                            continue;
                        }
                        Err(TryPopIntoError::TooSmall { needed }) => assert_eq!(needed, len),
                        Err(TryPopIntoError::Empty) => {}
                        Err(e) => panic!("try_pop_into: {e:?}"),
                    }
                }
                match rx.try_read() {
                    Ok(msg) => {
                        assert_eq!(msg.len(), len, "{flavor:?} message {i}");
                        assert!(msg.iter().enumerate().all(|(j, &b)| b == byte(i, j)));
                        i += 1;
                    }
                    Err(TryPopError::Empty) => thread::yield_now(),
                    Err(e) => panic!("try_read: {e:?}"),
                }
            }
            t.join().unwrap();
            assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
        }
    }
}
