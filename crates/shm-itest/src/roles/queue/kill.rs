//! Child roles (of the `shm-itest` binary) for the SIGKILL tests of the one-ring queues
//! (`tests/queue_kill.rs`, `tests/queue_kill_random.rs`, `tests/queue_poison.rs`,
//! `tests/queue_alloc.rs`), and the
//! self-checking payloads both sides use. Not meant to be run by hand.
//!
//! Every item carries its producer's tag and sequence number and is checked whole by
//! regenerating it ([`check_message`], [`check_item`]): a torn, partial or stale item is
//! reported, never taken for a good one.
//!
//! Roles (arguments after the role name; exit code 0 on success, 1 on a failed operation, 100
//! on bad arguments). Each prints `ready` once it holds its role:
//!
//! - `kill-bytes-produce NAME TAG START N [HOLD]`: opens the byte queue NAME (either flavor),
//!   pushes the messages `START..START + N` of TAG (lengths [`message_len`]; odd sequence
//!   numbers through a loan, even ones with `push`) and exits; with HOLD, then takes a loan
//!   (`try_loan`, once a slot is free) of HOLD bytes for message `START + N`, writes only its
//!   first half, prints `loaned` and sleeps holding it (to be killed).
//! - `kill-chunk-produce NAME START N [HOLD]`: the same for the `SpscQueue<Item>` NAME through
//!   `write_chunk`; with HOLD, takes a chunk of HOLD slots, fills its first half, prints
//!   `chunked` and sleeps holding it.
//! - `kill-read-hold NAME`: takes a consumer of the byte queue NAME (either flavor), reads one
//!   message in place (`read`), prints `holding SEQ` and sleeps holding the [`Received`] (to be killed).
//! - `kill-push-loop NAME KIND TAG [MAX]`: pushes TAG's items `0, 1, 2, …` as fast as it can
//!   until killed (or for at most a minute). KIND: `typed-mpmc` (`MpmcQueue<Item>`),
//!   `typed-spsc` (`SpscQueue<Item>` through `write_chunk`, chunks of 1 to 4 filled with a
//!   pause in the middle), `bytes-mpmc`, `bytes-spsc` (byte queues; two messages in three
//!   through a loan, written in two halves a pause apart), `joinable` (`JoinableQueue::put`,
//!   messages of at most MAX bytes).
//! - `kill-pop-loop NAME LOG`: consumes the byte queue NAME (either flavor) until
//!   `Disconnected`, every other message read in place; checks each message and that sequence
//!   numbers increase, and bumps its counter in the [`Log`] LOG (before releasing the slot of
//!   an in-place read).
//! - `kill-pipe-send NAME TAG [COUNT]`: opens the pipe NAME (the opener's end, which sends in
//!   a one-way pipe) and sends TAG's messages `0..COUNT` (without COUNT: until killed, or for
//!   at most a minute).
//! - `spsc-push-until-error NAME`: pushes `0, 1, 2, …` into the `SpscQueue<u64>` NAME until a
//!   push fails; prints `corrupt` and exits 0 if it failed with `Corrupt`.
//! - `joinable-expect-corrupt NAME`: takes items of the joinable queue NAME (each marked
//!   done) until a get reports `Corrupt`, checks that later gets and `join` do too, prints the
//!   number of items.
//! - `pipe-recv-expect-corrupt NAME`: creates the one-way pipe NAME (capacity 4, 64-byte
//!   messages; this end receives), prints `got` for each message until a receive reports
//!   `Corrupt`, checks that later receives do too, prints the number of messages, and sleeps
//!   holding its end (to be killed).
//!
//! [`Received`]: shm_queue::bytes::Received

use super::{name, num};
use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::{ElementLayout, ObjectKind, Segment, SegmentName, TypeCode};
use shm_process::Roles;
use shm_queue::bytes::{ByteQueue, BytesProducer};
use shm_queue::joinable::{JoinError, JoinableQueue};
use shm_queue::pipe::{Pipe, RecvTimeoutError, TryRecvError};
use shm_queue::{ChunkError, MpmcQueue, PopTimeoutError, PushError, SpscQueue, TryPopError};
use std::io::Write;
use std::sync::OnceLock;

/// Where a ring keeps its words in a segment body (the control block layout that
/// `shm_queue::ring` pins at compile time), for tests that read or overwrite them as any
/// process mapping the segment could.
pub mod layout {
    use shm_core::sync::atomic::AtomicU64;
    use shm_core::Segment;

    /// `tail`, from the ring's start.
    pub const TAIL: usize = 0;
    /// `head`, from the ring's start.
    pub const HEAD: usize = 128;
    /// The count of skipped positions, from the ring's start.
    pub const SKIPPED: usize = 256 + 24;
    /// The control block's length: the slots start here.
    pub const CTL_LEN: usize = 384 + 256 * shm_queue::ring::MAX_ROLES;
    /// Where a `JoinableQueue`'s ring starts (after its counter line).
    pub const JOINABLE_RING: usize = 128;
    /// Where a `Pipe`'s first ring (the one to the creating end) starts.
    pub const PIPE_RING: usize = 256;

    /// Bytes per slot of an MPMC byte ring whose messages have at most `max` bytes.
    pub fn mpmc_bytes_stride(max: usize) -> usize {
        (16 + max).next_multiple_of(64)
    }

    /// The `u64` at `offset` in `seg`'s body. Panics unless it lies inside and is 8-aligned.
    pub fn word(seg: &Segment, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= seg.body_len(),
            "offset {offset}"
        );
        // SAFETY: inside the body (checked), 8-aligned (the body is 128-aligned), mapped as
        // long as `seg` lives; every process accesses ring words only atomically.
        unsafe { &*seg.body().as_ptr().add(offset).cast::<AtomicU64>() }
    }
}
use std::time::{Duration, Instant};

/// A log of the items a consumer child received: one `u64` counter per sequence number in a
/// segment the test creates (the creating handle unlinks it on drop). The child bumps an
/// item's counter after checking it and before releasing its slot where it can (in-place
/// reads).
#[derive(Debug)]
pub struct Log(Segment);

impl Log {
    /// Creates the log `name` for sequence numbers `0..n` (all zero); panics if it cannot.
    pub fn create(name: &SegmentName, n: usize) -> Log {
        let seg = Segment::builder(name, ObjectKind::RawArray)
            .layout(ElementLayout::of_typecode(TypeCode::ULongLong))
            .count(n as u64)
            .body_len(8 * n)
            .create(|_, _| {})
            .expect("create log");
        Log(seg)
    }

    /// Opens the log `name`.
    pub fn open(name: &SegmentName) -> Option<Log> {
        Segment::builder(name, ObjectKind::RawArray)
            .open()
            .ok()
            .map(Log)
    }

    /// Sequence numbers it has room for.
    pub fn len(&self) -> usize {
        self.0.body_len() / 8
    }

    /// Whether it has room for none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counter of `seq` (panics past the end).
    pub fn counter(&self, seq: u64) -> &AtomicU64 {
        layout::word(&self.0, 8 * seq as usize)
    }
}

/// Test-side helpers shared by the SIGKILL tests.
pub mod support {
    use crate::{child, expect_line, Watchdog};
    use shm_core::{SegmentName, WaitStrategy};
    use shm_process::Process;
    use shm_queue::bytes::{ByteQueue, Flavor};
    use std::io::BufReader;
    use std::process::{ChildStdout, Stdio};
    use std::time::Duration;

    /// Short sleep slices, so that dead peers are noticed soon (the default is 50 ms).
    pub fn short_slices() -> WaitStrategy {
        WaitStrategy::sleep().with_slice(Duration::from_millis(5))
    }

    /// A pseudo-random generator seeded from the clock: the seed (for failure messages) and
    /// `rand(n)`, in `0..n`.
    pub fn rng() -> (u64, impl FnMut(u64) -> u64) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        let mut x = seed;
        (seed, move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n.max(1)
        })
    }

    /// Starts the child binary `program` in `role` with `args` (watched by `w`) and waits for
    /// its `ready` line; returns it with the rest of its stdout.
    pub fn start_ready(
        w: &Watchdog,
        program: &str,
        role: &str,
        args: &[&str],
    ) -> (Process, BufReader<ChildStdout>) {
        let mut p = w.start(
            child(program, role)
                .args(args.iter().copied())
                .stdout(Stdio::piped()),
        );
        let out = expect_line(&mut p, "ready");
        (p, out)
    }

    /// Creates the byte queue `name` of `flavor`, `capacity` messages of at most `max` bytes;
    /// panics if it cannot.
    pub fn byte_queue(name: &SegmentName, flavor: Flavor, capacity: u64, max: usize) -> ByteQueue {
        ByteQueue::builder(name)
            .flavor(flavor)
            .capacity(capacity)
            .max_message(max)
            .create()
            .expect("create the byte queue")
    }
}

/// Longest any role sleeps or loops, so that a forgotten child cannot outlive a test run by
/// much.
const LONG: Duration = Duration::from_secs(60);

/// Shortest self-checking message: sequence number, tag, check word.
pub const MIN_MESSAGE: usize = 24;

/// Longest self-checking message.
pub const MAX_MESSAGE: usize = 256 << 10;

/// Distinct starting offsets of a message's body in the pattern.
const OFFSETS: usize = 4093;

/// The typed queues' element: `[seq, tag, five filler words, check word]`.
pub type Item = [u64; 8];

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Pseudo-random bytes that message bodies are cut from (each at an offset given by its
/// sequence number, so that a slot's previous message never matches the next one's body).
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        (0..(OFFSETS + MAX_MESSAGE) / 8 + 1)
            .flat_map(|i| mix(i as u64 ^ 0xA5A5).to_le_bytes())
            .collect()
    })
}

/// The length of message `seq` of `tag` in a queue whose maximum is `max`: in
/// `MIN_MESSAGE..=max` (or `max` itself below that).
pub fn message_len(tag: u64, seq: u64, max: usize) -> usize {
    let max = max.min(MAX_MESSAGE);
    if max <= MIN_MESSAGE {
        return max;
    }
    MIN_MESSAGE + (mix(seq ^ (tag << 48)) % (max - MIN_MESSAGE + 1) as u64) as usize
}

fn check_word(tag: u64, seq: u64, len: usize) -> u64 {
    mix(seq ^ tag.rotate_left(40) ^ (len as u64).rotate_left(20))
}

/// Where the body of message `seq` of `tag` starts in the pattern.
fn body_offset(tag: u64, seq: u64) -> usize {
    (mix(seq ^ tag) % OFFSETS as u64) as usize
}

/// Writes message `seq` of `tag` into `buf` (its whole length; at least [`MIN_MESSAGE`] and at
/// most [`MAX_MESSAGE`] bytes).
pub fn fill_message(tag: u64, seq: u64, buf: &mut [u8]) {
    let len = buf.len();
    assert!((MIN_MESSAGE..=MAX_MESSAGE).contains(&len), "length {len}");
    let off = body_offset(tag, seq);
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..16].copy_from_slice(&tag.to_le_bytes());
    buf[16..len - 8].copy_from_slice(&pattern()[off..off + len - 24]);
    buf[len - 8..].copy_from_slice(&check_word(tag, seq, len).to_le_bytes());
}

/// Message `seq` of `tag`, `len` bytes long.
pub fn message(tag: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    fill_message(tag, seq, &mut v);
    v
}

/// `(tag, seq)` of a whole, intact message (every byte is what [`fill_message`] writes);
/// what is wrong with it otherwise.
pub fn check_message(msg: &[u8]) -> Result<(u64, u64), String> {
    let len = msg.len();
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&len) {
        return Err(format!("a message of {len} bytes"));
    }
    let word = |i: usize| u64::from_le_bytes(msg[i..i + 8].try_into().expect("8 bytes"));
    let (seq, tag) = (word(0), word(8));
    let off = body_offset(tag, seq);
    if word(len - 8) != check_word(tag, seq, len)
        || msg[16..len - 8] != pattern()[off..off + len - 24]
    {
        return Err(format!(
            "message {seq} of tag {tag} ({len} bytes) is torn or garbage"
        ));
    }
    Ok((tag, seq))
}

/// Item `seq` of `tag`.
pub fn item(tag: u64, seq: u64) -> Item {
    let mut it = [0; 8];
    it[0] = seq;
    it[1] = tag;
    for (i, w) in it.iter_mut().enumerate().take(7).skip(2) {
        *w = mix(seq ^ (tag << 32) ^ i as u64);
    }
    it[7] = it[..7].iter().fold(0x5EED, |a, &w| mix(a ^ w));
    it
}

/// `(tag, seq)` of a whole, intact item; what is wrong with it otherwise.
pub fn check_item(it: &Item) -> Result<(u64, u64), String> {
    if *it != item(it[1], it[0]) {
        return Err(format!("item {:?} is torn or garbage", it));
    }
    Ok((it[1], it[0]))
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// Sleeps (at most [`LONG`]) to be killed; a child that was not killed fails.
fn await_kill() -> i32 {
    std::thread::sleep(LONG);
    eprintln!("not killed within {LONG:?}");
    1
}

/// Pushes message `seq` of `tag`: through a loan when `loan` (written in two halves, `think`
/// spins apart, as a producer that builds its message in place), else with `push`; `false`
/// on failure.
fn push_message(tx: &mut BytesProducer, tag: u64, seq: u64, loan: bool, think: u32) -> bool {
    let len = message_len(tag, seq, tx.max_message());
    if loan {
        match tx.loan(len) {
            Ok(mut l) => {
                let whole = message(tag, seq, len);
                l[..len / 2].copy_from_slice(&whole[..len / 2]);
                self::think(think);
                l[len / 2..].copy_from_slice(&whole[len / 2..]);
                l.commit();
                true
            }
            Err(e) => {
                eprintln!("loan for message {seq}: {e}");
                false
            }
        }
    } else {
        let r = tx.push(message(tag, seq, len));
        if let Err(e) = &r {
            eprintln!("push of message {seq}: {e}");
        }
        r.is_ok()
    }
}

fn kill_bytes_produce(args: &[String]) -> i32 {
    let (Some(n), Some(tag), Some(start), Some(count)) =
        (name(args, 0), num(args, 1), num(args, 2), num(args, 3))
    else {
        return 100;
    };
    let q = match ByteQueue::builder(&n).open() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("kill-bytes-produce: open: {e}");
            return 1;
        }
    };
    let mut tx = match q.producer() {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("kill-bytes-produce: producer: {e}");
            return 1;
        }
    };
    say("ready");
    for seq in start..start + count {
        if !push_message(&mut tx, tag, seq, seq % 2 == 1, 0) {
            return 1;
        }
    }
    let Some(hold) = num(args, 4) else { return 0 };
    let hold = hold as usize;
    // `try_loan`, once a slot is free (this child is the only producer meanwhile).
    let until = Instant::now() + LONG;
    while q.len() >= q.capacity() && Instant::now() < until {
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut loan = match tx.try_loan(hold) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kill-bytes-produce: try_loan: {e}");
            return 1;
        }
    };
    // Half a message: if this slot were ever delivered, the check would catch it.
    let whole = message(tag, start + count, hold);
    loan[..hold / 2].copy_from_slice(&whole[..hold / 2]);
    say("loaned");
    let code = await_kill();
    drop(loan);
    code
}

/// Waits (at most [`LONG`]) until `n` slots are free and lends them.
fn wait_chunk(
    tx: &mut shm_queue::spsc::Producer<Item>,
    n: usize,
) -> Result<shm_queue::WriteChunk<'_, Item>, ChunkError> {
    let until = Instant::now() + LONG;
    while tx.slots() < n && Instant::now() < until {
        std::thread::sleep(Duration::from_micros(200));
    }
    tx.write_chunk(n)
}

fn kill_chunk_produce(args: &[String]) -> i32 {
    let (Some(n), Some(start), Some(count)) = (name(args, 0), num(args, 1), num(args, 2)) else {
        return 100;
    };
    let Ok(q) = SpscQueue::<Item>::builder(&n).open() else {
        return 1;
    };
    let mut tx = match q.producer() {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("kill-chunk-produce: producer: {e}");
            return 1;
        }
    };
    say("ready");
    let cap = q.capacity();
    let (mut seq, end) = (start, start + count);
    while seq < end {
        // Chunks of 1..=3 items, as many as are free (at least one).
        let k = (((end - seq) as usize).min(1 + (seq % 3) as usize)).min(cap);
        let mut chunk = match wait_chunk(&mut tx, k) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kill-chunk-produce: write_chunk({k}): {e}");
                return 1;
            }
        };
        let (a, b) = chunk.as_mut_slices();
        for (j, slot) in a.iter_mut().chain(b.iter_mut()).enumerate() {
            *slot = item(0, seq + j as u64);
        }
        chunk.commit_all();
        seq += k as u64;
    }
    let Some(hold) = num(args, 3) else { return 0 };
    let hold = hold as usize;
    let mut chunk = match wait_chunk(&mut tx, hold) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kill-chunk-produce: write_chunk({hold}): {e}");
            return 1;
        }
    };
    let (a, b) = chunk.as_mut_slices();
    for (j, slot) in a.iter_mut().chain(b.iter_mut()).enumerate().take(hold / 2) {
        *slot = item(0, end + j as u64);
    }
    say("chunked");
    let code = await_kill();
    drop(chunk);
    code
}

fn kill_read_hold(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(q) = ByteQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(mut rx) = q.consumer() else { return 1 };
    say("ready");
    let held = match rx.read_timeout(LONG) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("kill-read-hold: {e}");
            return 1;
        }
    };
    match check_message(&held) {
        Ok((_, seq)) => say(&format!("holding {seq}")),
        Err(e) => {
            eprintln!("kill-read-hold: {e}");
            return 1;
        }
    }
    let code = await_kill();
    drop(held);
    code
}

/// Spins between the halves of a message written through a loan in `kill-push-loop`, and
/// around the log entry in `kill-pop-loop`: long enough that a kill at a random moment often
/// finds the child in the middle of a loan or an in-place read.
const THINK: u32 = 20_000;

fn think(spins: u32) {
    for _ in 0..spins {
        std::hint::spin_loop();
    }
}

fn push_loop_bytes(q: &ByteQueue, tag: u64) -> i32 {
    let Ok(mut tx) = q.producer() else { return 1 };
    say("ready");
    let until = Instant::now() + LONG;
    let mut seq = 0;
    while Instant::now() < until {
        if !push_message(&mut tx, tag, seq, seq % 3 != 0, THINK) {
            return 1;
        }
        seq += 1;
    }
    0
}

fn kill_push_loop(args: &[String]) -> i32 {
    let (Some(n), Some(kind), Some(tag)) = (name(args, 0), args.get(1), num(args, 2)) else {
        return 100;
    };
    let until = Instant::now() + LONG;
    match kind.as_str() {
        "typed-mpmc" => {
            let Ok(q) = MpmcQueue::<Item>::builder(&n).open() else {
                return 1;
            };
            let Ok(mut tx) = q.producer() else { return 1 };
            say("ready");
            let mut seq = 0;
            while Instant::now() < until {
                if let Err(e) = tx.push(item(tag, seq)) {
                    eprintln!("kill-push-loop: push {seq}: {e}");
                    return 1;
                }
                seq += 1;
            }
            0
        }
        "typed-spsc" => {
            let Ok(q) = SpscQueue::<Item>::builder(&n).open() else {
                return 1;
            };
            let Ok(mut tx) = q.producer() else { return 1 };
            say("ready");
            let mut seq = 0;
            while Instant::now() < until {
                // Chunks of 1..=4 items, filled half, a pause, then the rest.
                let k = (1 + seq % 4) as usize;
                let mut chunk = match wait_chunk(&mut tx, k) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("kill-push-loop: write_chunk({k}): {e}");
                        return 1;
                    }
                };
                let (a, b) = chunk.as_mut_slices();
                for (j, slot) in a.iter_mut().chain(b.iter_mut()).enumerate() {
                    if j == k / 2 {
                        think(THINK);
                    }
                    *slot = item(tag, seq + j as u64);
                }
                chunk.commit_all();
                seq += k as u64;
            }
            0
        }
        "bytes-mpmc" | "bytes-spsc" => match ByteQueue::builder(&n).open() {
            Ok(q) => push_loop_bytes(&q, tag),
            Err(e) => {
                eprintln!("kill-push-loop: open: {e}");
                1
            }
        },
        "joinable" => {
            let Ok(q) = JoinableQueue::builder(&n).open() else {
                return 1;
            };
            let Ok(tx) = q.producer() else { return 1 };
            say("ready");
            let max = num(args, 3).map_or(MIN_MESSAGE, |m| m as usize);
            let mut buf = vec![0; max];
            let mut seq = 0;
            while Instant::now() < until {
                let m = &mut buf[..message_len(tag, seq, max)];
                fill_message(tag, seq, m);
                if let Err(e) = tx.push(&*m) {
                    eprintln!("kill-push-loop: put {seq}: {e}");
                    return 1;
                }
                seq += 1;
            }
            0
        }
        _ => 100,
    }
}

fn kill_pop_loop(args: &[String]) -> i32 {
    let (Some(n), Some(ln)) = (name(args, 0), name(args, 1)) else {
        return 100;
    };
    let (Ok(q), Some(log)) = (ByteQueue::builder(&n).open(), Log::open(&ln)) else {
        return 1;
    };
    let Ok(mut rx) = q.consumer() else { return 1 };
    say("ready");
    let mark = |m: &[u8], last: &mut Option<u64>| -> bool {
        match check_message(m) {
            Ok((_, seq)) if last.is_none_or(|l| seq > l) && (seq as usize) < log.len() => {
                log.counter(seq).fetch_add(1, Ordering::SeqCst);
                *last = Some(seq);
                true
            }
            other => {
                eprintln!("kill-pop-loop: after {last:?}: {other:?}");
                false
            }
        }
    };
    let mut last = None;
    for i in 0u64.. {
        // Spins around the log entry widen the windows a kill at a random moment should hit.
        let r = if i % 2 == 0 {
            // In place: logged before the slot is released (by the drop).
            rx.read_timeout(LONG).map(|m| {
                think(THINK);
                let ok = mark(&m, &mut last);
                think(THINK);
                ok
            })
        } else {
            rx.pop_timeout(LONG).map(|m| {
                think(THINK);
                mark(&m, &mut last)
            })
        };
        match r {
            Ok(true) => {}
            Ok(false) => return 1,
            Err(PopTimeoutError::Disconnected) => return 0,
            Err(e) => {
                eprintln!("kill-pop-loop: {e}");
                return 1;
            }
        }
    }
    1
}

fn kill_pipe_send(args: &[String]) -> i32 {
    let (Some(n), Some(tag)) = (name(args, 0), num(args, 1)) else {
        return 100;
    };
    let end = match Pipe::builder(&n).open() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kill-pipe-send: {e}");
            return 1;
        }
    };
    say("ready");
    let count = num(args, 2).unwrap_or(u64::MAX);
    let until = Instant::now() + LONG;
    let mut buf = vec![0; end.max_message()];
    for seq in 0..count {
        if Instant::now() >= until {
            break;
        }
        let m = &mut buf[..message_len(tag, seq, end.max_message())];
        fill_message(tag, seq, m);
        if let Err(e) = end.send_bytes(&*m) {
            eprintln!("kill-pipe-send: send {seq}: {e}");
            return 1;
        }
    }
    0
}

fn spsc_push_until_error(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(q) = SpscQueue::<u64>::builder(&n).open() else {
        return 1;
    };
    let Ok(mut tx) = q.producer() else { return 1 };
    say("ready");
    for i in 0.. {
        match tx.push(i) {
            Ok(()) => {}
            Err(PushError::Corrupt(v)) if v == i => {
                say("corrupt");
                return 0;
            }
            Err(e) => {
                eprintln!("spsc-push-until-error: push {i}: {e}");
                return 1;
            }
        }
    }
    1
}

fn joinable_expect_corrupt(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(q) = JoinableQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(rx) = q.consumer() else { return 1 };
    say("ready");
    let mut got = 0u64;
    loop {
        match rx.pop_timeout(LONG) {
            Ok(_) => {
                got += 1;
                if q.task_done().is_err() {
                    return 1;
                }
            }
            Err(PopTimeoutError::Corrupt) => break,
            Err(e) => {
                eprintln!("joinable-expect-corrupt: {e}");
                return 1;
            }
        }
    }
    if rx.try_pop() != Err(TryPopError::Corrupt) || q.join() != Err(JoinError::Corrupt) {
        eprintln!("joinable-expect-corrupt: a later get or join was not Corrupt");
        return 1;
    }
    say(&got.to_string());
    0
}

fn pipe_recv_expect_corrupt(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let end = match Pipe::builder(&n)
        .duplex(false)
        .capacity(4)
        .max_message(64)
        .create()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("pipe-recv-expect-corrupt: {e}");
            return 1;
        }
    };
    say("ready");
    let mut got = 0u64;
    loop {
        match end.recv_bytes_timeout(LONG) {
            Ok(_) => {
                got += 1;
                say("got");
            }
            Err(RecvTimeoutError::Corrupt) => break,
            Err(e) => {
                eprintln!("pipe-recv-expect-corrupt: {e}");
                return 1;
            }
        }
    }
    if end.try_recv_bytes() != Err(TryRecvError::Corrupt) {
        eprintln!("pipe-recv-expect-corrupt: a later receive was not Corrupt");
        return 1;
    }
    say(&got.to_string());
    // Hold the end, so that the sender sees the poison rather than a departed receiver.
    let code = await_kill();
    drop(end);
    code
}

/// Registers this module's roles, each named `queue.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("queue.kill-bytes-produce", kill_bytes_produce)
        .role("queue.kill-chunk-produce", kill_chunk_produce)
        .role("queue.kill-read-hold", kill_read_hold)
        .role("queue.kill-push-loop", kill_push_loop)
        .role("queue.kill-pop-loop", kill_pop_loop)
        .role("queue.kill-pipe-send", kill_pipe_send)
        .role("queue.spsc-push-until-error", spsc_push_until_error)
        .role("queue.joinable-expect-corrupt", joinable_expect_corrupt)
        .role("queue.pipe-recv-expect-corrupt", pipe_recv_expect_corrupt)
}
