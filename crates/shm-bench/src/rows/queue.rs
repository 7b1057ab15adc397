//! Queue rows: `u64` round trips between two processes (busy-polling and blocking) and
//! one-way `u64` throughput.

use super::oneway::{consume, produce, Pop};
use super::{arg, case, exit, finish, num, python, seg_name, Case, Group, Kind, Miss, Who, TWO};
use crate::error::{BoxError, Failure};
use crate::harness::{self, child_args, spin_until, Cfg, Child, Placement, Words};
use crossbeam_queue::ArrayQueue;
use shm_core::sync::{futex_wait, futex_wake, Deadline};
use shm_core::{SegmentName, WaitStrategy};
use shm_process::Roles;
use shm_queue::bytes::{ByteQueue, BytesTryPushError, Flavor, TryPopIntoError};
use shm_queue::pipe::Pipe;
use shm_queue::{ChunkError, MpmcQueue, SpscQueue, TryPopError, TryPushError};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Ring capacity of every queue row.
const CAP: usize = 4096;
/// How long a side waits for its peer before calling the cell failed.
const PATIENCE: Duration = Duration::from_secs(10);
/// Messages per throughput batch (full mode).
const TP_BATCH: u64 = 200_000;

/// Table of the busy-polling round trips.
pub const RT_BUSY: &str = "queue-rt-busy";
const RT_BLOCK: &str = "queue-rt-block";
/// Table of the one-way message rates.
pub const TP: &str = "queue-tp";

/// Lines the budget reads (`report`), by name.
pub const SPSC_RT_LINE: &str = "shm-queue SPSC ring";
/// Pipe's busy round trip.
pub const PIPE_RT_LINE: &str = "shm-queue Pipe";
/// The round trip through two SPSC byte queues: the ring under Pipe, same messages.
pub const BYTES_RT_LINE: &str = "shm-queue byte queue (SPSC), the ring under Pipe";
/// The round-trip floor.
pub const ATOMIC_RT_LINE: &str = "atomic ping-pong in shared memory";
/// The round-trip floor of any pair of queues: one word per direction, each written by one
/// side only, on its own line (a queue's index), so a round trip moves two lines, not one.
pub const TWO_WORD_RT_LINE: &str = "two-word ping-pong in shared memory (one word per direction)";
/// SPSC one-way, single items.
pub const SPSC_TP_LINE: &str = "shm-queue SPSC ring, try_push/try_pop";
/// SPSC one-way, slices.
pub const SPSC_SLICES_LINE: &str = "shm-queue SPSC ring, push_slice/pop_slice (256)";
/// SPSC one-way, chunks.
pub const SPSC_CHUNKS_LINE: &str = "shm-queue SPSC ring, write_chunk/read_chunk (256)";
/// MPMC one-way.
pub const MPMC_TP_LINE: &str = "shm-queue MPMC ring, try_push/try_pop";
/// 64 B byte messages one-way, in the message-rate table.
pub const BYTES_TP_LINE: &str = "shm-queue byte queue (SPSC), 64 B messages";
/// rtrb between two threads.
pub const RTRB_LINE: &str = "rtrb, two threads";
/// ArrayQueue between two threads.
pub const ARRAY_QUEUE_LINE: &str = "crossbeam ArrayQueue, two threads";

/// The queue tables.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            key: RT_BUSY,
            area: "queue",
            title: "Round trip of a u64 between two processes, busy-polling",
            op: "one round trip (send, the peer echoes, receive)",
            kind: Kind::Latency,
            placements: TWO,
        },
        Group {
            key: RT_BLOCK,
            area: "queue",
            title: "Round trip of a u64 between two processes, blocking waits (both sides sleep in the kernel)",
            op: "one round trip",
            kind: Kind::Latency,
            placements: TWO,
        },
        Group {
            key: TP,
            area: "queue",
            title: "One-way message rate between two processes (u64 items; one line of 64 B byte messages)",
            op: "one message, over batches of 200k; ours across processes, the ceilings across threads, all with the same spin loops",
            kind: Kind::Throughput { bytes: None },
            placements: TWO,
        },
    ]
}

fn strategy(mode: &str) -> WaitStrategy {
    if mode == "sleep" {
        WaitStrategy::sleep()
    } else {
        WaitStrategy::busy_poll()
    }
}

/// The queue cases.
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        case(RT_BUSY, SPSC_RT_LINE, Who::Ours, "busy-poll", |c, p| {
            spsc_rt(c, p, "busy")
        })
        .fine(),
        case(
            RT_BUSY,
            "shm-queue MPMC ring",
            Who::Ours,
            "busy-poll",
            |c, p| mpmc_rt(c, p, "busy"),
        ),
        case(RT_BUSY, PIPE_RT_LINE, Who::Ours, "busy-poll", |c, p| {
            pipe_rt(c, p, "busy")
        })
        .fine(),
        case(RT_BUSY, BYTES_RT_LINE, Who::Ours, "busy-poll", |c, p| {
            bytes_rt(c, p, "busy")
        })
        .fine(),
        case(RT_BUSY, ATOMIC_RT_LINE, Who::Floor, "spin", atomic_rt).fine(),
        case(RT_BUSY, TWO_WORD_RT_LINE, Who::Floor, "spin", two_word_rt).fine(),
        case(
            RT_BUSY,
            "Unix socket pair",
            Who::Peer,
            "non-blocking recv, spin",
            |c, p| unix_rt(c, p, true),
        ),
        case(RT_BUSY, "ipc-channel", Who::Peer, "try_recv, spin", ipc_rt),
        case(
            RT_BUSY,
            "shared_memory + raw_sync (Mutex + BusyEvent)",
            Who::Peer,
            "BusyEvent spin",
            rawsync_rt,
        ),
    ];
    #[cfg(feature = "iceoryx2")]
    v.push(case(
        RT_BUSY,
        "iceoryx2 publish-subscribe",
        Who::Peer,
        "receive, spin",
        crate::rows::iceoryx::rt,
    ));
    #[cfg(not(feature = "iceoryx2"))]
    v.push(case(
        RT_BUSY,
        "iceoryx2 publish-subscribe",
        Who::Peer,
        "receive, spin",
        |_, _| Err(Miss::Skipped("built without the iceoryx2 feature".into())),
    ));
    v.extend([
        python::line(
            RT_BUSY,
            "Python mp.Queue",
            "blocking (no busy-poll in mp)",
            "queue_rt",
            1,
        ),
        python::line(
            RT_BUSY,
            "Python mp.Pipe",
            "blocking (no busy-poll in mp)",
            "pipe_rt",
            1,
        ),
        // Blocking round trips.
        case(
            RT_BLOCK,
            "shm-queue SPSC ring",
            Who::Ours,
            "futex sleep",
            |c, p| spsc_rt(c, p, "sleep"),
        ),
        case(
            RT_BLOCK,
            "shm-queue Pipe",
            Who::Ours,
            "futex sleep",
            |c, p| pipe_rt(c, p, "sleep"),
        ),
        case(
            RT_BLOCK,
            "futex ping-pong in shared memory",
            Who::Floor,
            "futex sleep",
            futex_rt,
        ),
        case(
            RT_BLOCK,
            "Unix socket pair",
            Who::Peer,
            "blocking read",
            |c, p| unix_rt(c, p, false),
        ),
        // Throughput: every line but the last two runs the loops of `oneway`.
        case(
            TP,
            SPSC_TP_LINE,
            Who::Ours,
            "default; spin on try_*",
            |c, p| spsc_tp(c, p, false),
        )
        .fine(),
        case(
            TP,
            SPSC_SLICES_LINE,
            Who::Ours,
            "default; spin on *_slice",
            |c, p| spsc_tp(c, p, true),
        )
        .fine(),
        case(
            TP,
            SPSC_CHUNKS_LINE,
            Who::Ours,
            "default; spin on *_chunk",
            spsc_chunk_tp,
        )
        .fine(),
        case(
            TP,
            MPMC_TP_LINE,
            Who::Ours,
            "default; spin on try_*",
            |c, p| mpmc_tp(c, p, false),
        )
        .fine(),
        case(
            TP,
            BYTES_TP_LINE,
            Who::Ours,
            "default; spin on try_*",
            bytes_tp,
        )
        .fine(),
        case(TP, RTRB_LINE, Who::Ceiling, "spin on push/pop", |c, p| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
            threads_tp(
                c,
                p,
                move |i, _| Ok(u64::from(tx.push(i).is_ok())),
                move || rx.pop().ok(),
            )
        })
        .fine(),
        case(
            TP,
            ARRAY_QUEUE_LINE,
            Who::Ceiling,
            "spin on push/pop",
            |c, p| {
                let q = Arc::new(ArrayQueue::<u64>::new(CAP));
                let q2 = Arc::clone(&q);
                threads_tp(
                    c,
                    p,
                    move |i, _| Ok(u64::from(q.push(i).is_ok())),
                    move || q2.pop(),
                )
            },
        )
        .fine(),
        case(
            TP,
            "Unix socket, one write per message",
            Who::Peer,
            "blocking",
            unix_tp,
        ),
        python::line(TP, "Python mp.Queue", "blocking", "queue_tp", 10_000),
    ]);
    v
}

/// The queue rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r.role("q-spsc-echo", |a| exit(spsc_echo(child_args(a))))
        .role("q-mpmc-echo", |a| exit(mpmc_echo(child_args(a))))
        .role("q-pipe-echo", |a| exit(pipe_echo(child_args(a))))
        .role("q-bytes-echo", |a| exit(bytes_echo(child_args(a))))
        .role("q-atomic-pong", |a| exit(atomic_pong(child_args(a))))
        .role("q-two-word-pong", |a| exit(two_word_pong(child_args(a))))
        .role("q-futex-pong", |a| exit(futex_pong(child_args(a))))
        .role("q-unix-echo", |a| exit(unix_echo(child_args(a))))
        .role("q-ipc-echo", |a| exit(ipc_echo(child_args(a))))
        .role("q-rawsync-echo", |a| exit(rawsync_echo(child_args(a))))
        .role("q-spsc-sink", |a| exit(spsc_sink(child_args(a))))
        .role("q-mpmc-sink", |a| exit(mpmc_sink(child_args(a))))
        .role("q-bytes-sink", |a| exit(bytes_sink(child_args(a))))
        .role("q-chunk-sink", |a| exit(chunk_sink(child_args(a))))
        .role("q-unix-sink", |a| exit(unix_sink(child_args(a))))
}

// ---- round trips: our queues -------------------------------------------------------------

/// The round trip through two rings of one kind (`SpscQueue` or `MpmcQueue`, which share
/// their method names) and its echo child.
macro_rules! ring_round_trip {
    ($Queue:ident, $rt:ident, $echo:ident, $role:literal) => {
        fn $rt(cfg: &Cfg, p: Placement, mode: &str) -> Result<Vec<f64>, Miss> {
            harness::pin_to(p.parent_cpu());
            let (n1, n2) = (SegmentName::unique(), SegmentName::unique());
            let mk = |n: &SegmentName| {
                $Queue::<u64>::builder(n)
                    .capacity(CAP)
                    .create()
                    .map_err(|e| format!("create: {e}"))
            };
            let (ping, pong) = (mk(&n1)?, mk(&n2)?);
            let mut tx = ping.producer().map_err(Miss::failed)?;
            let mut rx = pong.consumer().map_err(Miss::failed)?;
            tx.set_wait_strategy(strategy(mode));
            rx.set_wait_strategy(strategy(mode));
            let child = Child::start(
                $role,
                p.child_cpu(),
                &[mode.into(), n1.as_str().into(), n2.as_str().into()],
            )?;
            let mut i = 0u64;
            let r = harness::per_op(cfg, || {
                i += 1;
                tx.push_timeout(i, PATIENCE)
                    .map_err(|e| format!("push: {e}"))?;
                match rx.pop_timeout(PATIENCE) {
                    Ok(v) if v == i => Ok(()),
                    Ok(v) => Err(format!("echo returned {v}, sent {i}")),
                    Err(e) => Err(format!("pop: {e}")),
                }
            });
            drop(tx);
            finish(child, r)
        }

        fn $echo(a: &[String]) -> Result<(), BoxError> {
            let ping = $Queue::<u64>::builder(&seg_name(arg(a, 1)?)?).open()?;
            let pong = $Queue::<u64>::builder(&seg_name(arg(a, 2)?)?).open()?;
            let mut rx = ping.consumer()?;
            let mut tx = pong.producer()?;
            rx.set_wait_strategy(strategy(arg(a, 0)?));
            tx.set_wait_strategy(strategy(arg(a, 0)?));
            while let Ok(v) = rx.pop() {
                tx.push(v).map_err(|e| format!("echo push: {e}"))?;
            }
            Ok(())
        }
    };
}

ring_round_trip!(SpscQueue, spsc_rt, spsc_echo, "q-spsc-echo");
ring_round_trip!(MpmcQueue, mpmc_rt, mpmc_echo, "q-mpmc-echo");

/// The measured loop of the byte round trips (Pipe, and the byte queues under it): send the
/// 8-byte count with a timed send, receive the echo with a timed receive into a buffer, check
/// it. One loop for both lines, so that they differ only in the verbs' receiver.
fn byte_round_trips(
    cfg: &Cfg,
    mut send: impl FnMut([u8; 8]) -> Result<(), String>,
    mut recv: impl FnMut(&mut [u8]) -> Result<usize, String>,
) -> Result<Vec<f64>, String> {
    let mut i = 0u64;
    let mut buf = [0u8; 64];
    harness::per_op(cfg, || {
        i += 1;
        send(i.to_le_bytes())?;
        let n = recv(&mut buf)?;
        if n == 8 && buf[..8] == i.to_le_bytes() {
            Ok(())
        } else {
            Err(format!("echo returned {n} bytes that are not {i}"))
        }
    })
}

fn pipe_rt(cfg: &Cfg, p: Placement, mode: &str) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let mut end = Pipe::builder(&n)
        .duplex(true)
        .max_message(64)
        .capacity(64)
        .create()
        .map_err(|e| format!("create pipe: {e}"))?;
    end.set_wait_strategy(strategy(mode));
    let child = Child::start(
        "q-pipe-echo",
        p.child_cpu(),
        &[mode.into(), n.as_str().into()],
    )?;
    let r = byte_round_trips(
        cfg,
        |m| {
            end.send_bytes_timeout(m, PATIENCE)
                .map_err(|e| format!("send: {e}"))
        },
        |buf| {
            end.recv_into_timeout(buf, PATIENCE)
                .map_err(|e| format!("recv: {e}"))
        },
    );
    drop(end);
    finish(child, r)
}

fn pipe_echo(a: &[String]) -> Result<(), BoxError> {
    let mut end = Pipe::builder(&seg_name(arg(a, 1)?)?).open()?;
    end.set_wait_strategy(strategy(arg(a, 0)?));
    let mut buf = [0u8; 64];
    while let Ok(n) = end.recv_into(&mut buf) {
        end.send_bytes(&buf[..n])
            .map_err(|e| format!("echo send: {e}"))?;
    }
    Ok(())
}

/// The round trip through two SPSC byte queues of the geometry of [`pipe_rt`]'s pipe (64
/// messages of at most 64 bytes each way), with the same 8-byte messages and the same verbs
/// (a timed send and a timed receive into a buffer): the ring Pipe is built on, for the
/// "Pipe within 1.1x of its ring" budget.
fn bytes_rt(cfg: &Cfg, p: Placement, mode: &str) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let (n1, n2) = (SegmentName::unique(), SegmentName::unique());
    let mk = |n: &SegmentName| {
        ByteQueue::builder(n)
            .flavor(Flavor::Spsc)
            .capacity(64)
            .max_message(64)
            .create()
            .map_err(|e| format!("create: {e}"))
    };
    let (ping, pong) = (mk(&n1)?, mk(&n2)?);
    let mut tx = ping.producer().map_err(Miss::failed)?;
    let mut rx = pong.consumer().map_err(Miss::failed)?;
    tx.set_wait_strategy(strategy(mode));
    rx.set_wait_strategy(strategy(mode));
    let child = Child::start(
        "q-bytes-echo",
        p.child_cpu(),
        &[mode.into(), n1.as_str().into(), n2.as_str().into()],
    )?;
    let r = byte_round_trips(
        cfg,
        |m| {
            tx.push_timeout(m, PATIENCE)
                .map_err(|e| format!("push: {e}"))
        },
        |buf| {
            rx.pop_into_timeout(buf, PATIENCE)
                .map_err(|e| format!("pop: {e}"))
        },
    );
    drop(tx);
    finish(child, r)
}

fn bytes_echo(a: &[String]) -> Result<(), BoxError> {
    let open = |i| -> Result<ByteQueue, BoxError> {
        Ok(ByteQueue::builder(&seg_name(arg(a, i)?)?)
            .flavor(Flavor::Spsc)
            .open()?)
    };
    let (ping, pong) = (open(1)?, open(2)?);
    let mut rx = ping.consumer()?;
    let mut tx = pong.producer()?;
    rx.set_wait_strategy(strategy(arg(a, 0)?));
    tx.set_wait_strategy(strategy(arg(a, 0)?));
    let mut buf = [0u8; 64];
    while let Ok(n) = rx.pop_into(&mut buf) {
        tx.push(&buf[..n]).map_err(|e| format!("echo push: {e}"))?;
    }
    Ok(())
}

// ---- round trips: floors -----------------------------------------------------------------

/// Value of the shared word that tells a pong child to stop.
const STOP: u64 = u64::MAX;

fn atomic_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let a = w.word(0);
    let child = Child::start("q-atomic-pong", p.child_cpu(), &[w.name()])?;
    let mut v = 0u64;
    let r = harness::per_op(cfg, || {
        a.store(v + 1, Ordering::Release);
        if !spin_until(PATIENCE, || a.load(Ordering::Acquire) == v + 2) {
            return Err("pong child did not answer".to_string());
        }
        v += 2;
        Ok(())
    });
    a.store(STOP, Ordering::Release);
    finish(child, r)
}

fn atomic_pong(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 0)?)?;
    let x = w.word(0);
    loop {
        // Spin (yielding now and then) until a ping or the stop value arrives.
        let mut v = 0;
        let ready = || {
            v = x.load(Ordering::Acquire);
            v == STOP || v % 2 == 1
        };
        if !spin_until(PATIENCE, ready) {
            continue;
        }
        if v == STOP {
            return Ok(());
        }
        x.store(v + 1, Ordering::Release);
    }
}

/// The two-word floor: the parent writes its ping count into word 0, the child answers with
/// the same count in word 1 (each word on its own 128-byte line, each written by one side).
fn two_word_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let (ping, pong) = (w.word(0), w.word(1));
    let child = Child::start("q-two-word-pong", p.child_cpu(), &[w.name()])?;
    let mut v = 0u64;
    let r = harness::per_op(cfg, || {
        v += 1;
        ping.store(v, Ordering::Release);
        if !spin_until(PATIENCE, || pong.load(Ordering::Acquire) == v) {
            return Err("pong child did not answer".to_string());
        }
        Ok(())
    });
    ping.store(STOP, Ordering::Release);
    finish(child, r)
}

fn two_word_pong(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 0)?)?;
    let (ping, pong) = (w.word(0), w.word(1));
    let mut seen = 0u64;
    loop {
        let mut v = 0;
        let ready = || {
            v = ping.load(Ordering::Acquire);
            v != seen
        };
        if !spin_until(PATIENCE, ready) {
            continue;
        }
        if v == STOP {
            return Ok(());
        }
        seen = v;
        pong.store(v, Ordering::Release);
    }
}

/// Futex word value that tells the pong child to stop.
const FSTOP: u32 = u32::MAX;

fn futex_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let x = w.word32(0);
    let child = Child::start("q-futex-pong", p.child_cpu(), &[w.name()])?;
    let mut v = 0u32;
    let r = harness::per_op(cfg, || {
        // Odd values are the parent's pings, the next even value the child's pong; the word
        // wraps below FSTOP.
        let ping = if v.wrapping_add(2) >= FSTOP - 1 {
            1
        } else {
            v + 1
        };
        x.store(ping, Ordering::Release);
        futex_wake(x, 1);
        let deadline = Deadline::after(PATIENCE);
        loop {
            let now = x.load(Ordering::Acquire);
            if now == ping + 1 {
                v = now;
                return Ok(());
            }
            if deadline.has_passed() {
                return Err("futex pong child did not answer".to_string());
            }
            futex_wait(x, now, deadline);
        }
    });
    x.store(FSTOP, Ordering::Release);
    futex_wake(x, 1);
    finish(child, r)
}

fn futex_pong(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 0)?)?;
    let x = w.word32(0);
    loop {
        let v = x.load(Ordering::Acquire);
        if v == FSTOP {
            return Ok(());
        }
        if v % 2 == 1 {
            x.store(v + 1, Ordering::Release);
            futex_wake(x, 1);
        } else {
            futex_wait(x, v, Deadline::after(Duration::from_secs(30)));
        }
    }
}

// ---- round trips: peers ------------------------------------------------------------------

/// A listening Unix socket at a fresh temporary path, removed on drop.
pub struct SockPath {
    /// The path.
    pub path: std::path::PathBuf,
    /// The listener.
    pub listener: UnixListener,
}

impl SockPath {
    /// Binds a fresh path.
    pub fn bind() -> Result<SockPath, BoxError> {
        let path = std::env::temp_dir().join(format!(
            "shm-bench-{}-{}.sock",
            std::process::id(),
            SegmentName::unique().as_str().trim_start_matches('/')
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| format!("bind {path:?}: {e}"))?;
        Ok(SockPath { path, listener })
    }

    /// Accepts the child's connection (waiting at most [`PATIENCE`]).
    pub fn accept(&self) -> Result<UnixStream, BoxError> {
        self.listener.set_nonblocking(true)?;
        let deadline = Deadline::after(PATIENCE);
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false)?;
                    s.set_read_timeout(Some(PATIENCE))?;
                    return Ok(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if deadline.has_passed() {
                        return Err("the child did not connect".into());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("accept: {e}").into()),
            }
        }
    }

    /// The path as a child argument.
    pub fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

impl Drop for SockPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl std::fmt::Debug for SockPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockPath")
            .field("path", &self.path)
            .finish()
    }
}

/// Reads exactly `buf.len()` bytes; with `spin`, from a non-blocking socket by spinning.
pub fn read_full(s: &mut UnixStream, buf: &mut [u8], spin: bool) -> Result<(), BoxError> {
    if !spin {
        return Ok(s.read_exact(buf).map_err(|e| Failure::new("read", e))?);
    }
    let mut got = 0;
    let deadline = Deadline::after(PATIENCE);
    let mut n = 0u32;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err("peer closed the socket".into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                n = n.wrapping_add(1);
                if n.is_multiple_of(4096) && deadline.has_passed() {
                    return Err("read timed out".into());
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(format!("read: {e}").into()),
        }
    }
    Ok(())
}

/// Writes all of `buf` (spinning on a non-blocking socket's WouldBlock).
pub fn write_full(s: &mut UnixStream, buf: &[u8]) -> Result<(), BoxError> {
    let mut put = 0;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(0) => return Err("peer closed the socket".into()),
            Ok(k) => put += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(format!("write: {e}").into()),
        }
    }
    Ok(())
}

fn unix_rt(cfg: &Cfg, p: Placement, spin: bool) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let sock = SockPath::bind()?;
    let mode = if spin { "busy" } else { "block" };
    let child = Child::start("q-unix-echo", p.child_cpu(), &[mode.into(), sock.arg()])?;
    let mut s = sock.accept()?;
    s.set_nonblocking(spin).map_err(Miss::failed)?;
    let mut i = 0u64;
    let mut buf = [0u8; 8];
    let r = harness::per_op(cfg, || -> Result<(), BoxError> {
        i += 1;
        write_full(&mut s, &i.to_le_bytes())?;
        read_full(&mut s, &mut buf, spin)?;
        if u64::from_le_bytes(buf) == i {
            Ok(())
        } else {
            Err("echo returned another value".into())
        }
    });
    drop(s);
    finish(child, r)
}

fn unix_echo(a: &[String]) -> Result<(), BoxError> {
    let spin = arg(a, 0)? == "busy";
    let mut s = UnixStream::connect(arg(a, 1)?).map_err(|e| format!("connect: {e}"))?;
    s.set_nonblocking(spin)?;
    let mut buf = [0u8; 8];
    loop {
        if read_full(&mut s, &mut buf, spin).is_err() {
            return Ok(()); // the parent closed the socket: done
        }
        write_full(&mut s, &buf)?;
    }
}

type IpcPair = (
    ipc_channel::ipc::IpcSender<u64>,
    ipc_channel::ipc::IpcReceiver<u64>,
);

fn ipc_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    use ipc_channel::ipc::{IpcOneShotServer, TryRecvError};
    harness::pin_to(p.parent_cpu());
    let (server, server_name) =
        IpcOneShotServer::<IpcPair>::new().map_err(|e| format!("ipc server: {e}"))?;
    let child = Child::start("q-ipc-echo", p.child_cpu(), &[server_name])?;
    let (_, (tx, rx)) = server.accept().map_err(|e| format!("ipc accept: {e}"))?;
    let mut i = 0u64;
    let r = harness::per_op(cfg, || {
        i += 1;
        tx.send(i).map_err(|e| format!("ipc send: {e}"))?;
        let deadline = Deadline::after(PATIENCE);
        loop {
            match rx.try_recv() {
                Ok(v) if v == i => return Ok(()),
                Ok(v) => return Err(format!("echo returned {v}, sent {i}")),
                Err(TryRecvError::Empty) => {
                    if deadline.has_passed() {
                        return Err("ipc-channel echo timed out".to_string());
                    }
                    std::hint::spin_loop();
                }
                Err(e) => return Err(format!("ipc recv: {e:?}")),
            }
        }
    });
    drop(tx);
    finish(child, r)
}

fn ipc_echo(a: &[String]) -> Result<(), BoxError> {
    use ipc_channel::ipc::{self, IpcSender, TryRecvError};
    let boot = IpcSender::<IpcPair>::connect(arg(a, 0)?.to_owned())
        .map_err(|e| format!("ipc connect: {e}"))?;
    let (to_child, from_parent) = ipc::channel::<u64>()?;
    let (to_parent, from_child) = ipc::channel::<u64>()?;
    boot.send((to_child, from_child))
        .map_err(|e| format!("ipc bootstrap: {e}"))?;
    loop {
        match from_parent.try_recv() {
            Ok(v) => to_parent.send(v).map_err(|e| format!("ipc send: {e}"))?,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
            Err(_) => return Ok(()), // the parent hung up
        }
    }
}

/// Offsets in the shared_memory segment of the raw_sync row.
const RS_DATA: usize = 64;
const RS_EV_PING: usize = 128;
const RS_EV_PONG: usize = 256;
const RS_STOP: u64 = u64::MAX;

/// raw_sync's objects in a `shared_memory` mapping.
struct RawSync {
    shmem: shared_memory::Shmem,
    lock: Box<dyn raw_sync::locks::LockImpl>,
    ping: Box<dyn raw_sync::events::EventImpl>,
    pong: Box<dyn raw_sync::events::EventImpl>,
}

/// raw_sync's errors are `Box<dyn Error>` without `Send + Sync`, so `?` cannot move them into
/// a [`BoxError`]: only their message can cross (the one error here that is not kept as is).
fn rs_err(e: Box<dyn std::error::Error>) -> BoxError {
    e.to_string().into()
}

impl RawSync {
    fn create() -> Result<RawSync, BoxError> {
        use raw_sync::events::{BusyEvent, EventInit};
        use raw_sync::locks::{LockInit, Mutex};
        let shmem = shared_memory::ShmemConf::new()
            .size(4096)
            .create()
            .map_err(|e| format!("shared_memory create: {e}"))?;
        let base = shmem.as_ptr();
        // SAFETY: the mapping is 4096 bytes, private to this row until the child opens it;
        // the mutex lives at 0..64, its data word at 64, the two events at 128 and 256, all
        // inside the mapping and not overlapping.
        let (lock, ping, pong) = unsafe {
            let (lock, _) = Mutex::new(base, base.add(RS_DATA)).map_err(rs_err)?;
            let (ping, _) = BusyEvent::new(base.add(RS_EV_PING), true).map_err(rs_err)?;
            let (pong, _) = BusyEvent::new(base.add(RS_EV_PONG), true).map_err(rs_err)?;
            (lock, ping, pong)
        };
        Ok(RawSync {
            shmem,
            lock,
            ping,
            pong,
        })
    }

    fn open(os_id: &str) -> Result<RawSync, BoxError> {
        use raw_sync::events::{BusyEvent, EventInit};
        use raw_sync::locks::{LockInit, Mutex};
        let shmem = shared_memory::ShmemConf::new()
            .os_id(os_id)
            .open()
            .map_err(|e| format!("shared_memory open: {e}"))?;
        if shmem.len() < 4096 {
            return Err("shared_memory segment too short".into());
        }
        let base = shmem.as_ptr();
        // SAFETY: the creator initialized these objects at these offsets before starting us.
        let (lock, ping, pong) = unsafe {
            let (lock, _) = Mutex::from_existing(base, base.add(RS_DATA)).map_err(rs_err)?;
            let (ping, _) = BusyEvent::from_existing(base.add(RS_EV_PING)).map_err(rs_err)?;
            let (pong, _) = BusyEvent::from_existing(base.add(RS_EV_PONG)).map_err(rs_err)?;
            (lock, ping, pong)
        };
        Ok(RawSync {
            shmem,
            lock,
            ping,
            pong,
        })
    }

    fn put(&self, v: u64) -> Result<(), BoxError> {
        let g = self.lock.lock().map_err(rs_err)?;
        // SAFETY: the guard's data pointer is the 8-aligned data word at RS_DATA, accessed
        // only under the mutex.
        unsafe { (*g).cast::<u64>().write(v) };
        drop(g);
        Ok(())
    }

    fn get(&self) -> Result<u64, BoxError> {
        let g = self.lock.lock().map_err(rs_err)?;
        // SAFETY: as in `put`.
        let v = unsafe { (*g).cast::<u64>().read() };
        drop(g);
        Ok(v)
    }
}

fn rawsync_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    use raw_sync::{events::EventState, Timeout};
    harness::pin_to(p.parent_cpu());
    let rs = RawSync::create()?;
    let child = Child::start(
        "q-rawsync-echo",
        p.child_cpu(),
        &[rs.shmem.get_os_id().to_owned()],
    )?;
    let mut i = 0u64;
    let r = harness::per_op(cfg, || -> Result<(), BoxError> {
        i += 1;
        rs.put(i)?;
        rs.ping.set(EventState::Signaled).map_err(rs_err)?;
        rs.pong
            .wait(Timeout::Val(PATIENCE))
            .map_err(|e| format!("raw_sync wait: {e}"))?;
        match rs.get()? {
            v if v == i + 1 => Ok(()),
            v => Err(format!("echo returned {v}, expected {}", i + 1).into()),
        }
    });
    let _ = rs.put(RS_STOP);
    let _ = rs.ping.set(EventState::Signaled);
    finish(child, r)
}

fn rawsync_echo(a: &[String]) -> Result<(), BoxError> {
    use raw_sync::{events::EventState, Timeout};
    let rs = RawSync::open(arg(a, 0)?)?;
    loop {
        rs.ping
            .wait(Timeout::Val(Duration::from_secs(30)))
            .map_err(|e| format!("raw_sync wait: {e}"))?;
        let v = rs.get()?;
        if v == RS_STOP {
            return Ok(());
        }
        rs.put(v + 1)?;
        rs.pong.set(EventState::Signaled).map_err(rs_err)?;
    }
}

// ---- throughput --------------------------------------------------------------------------
//
// Every line of ours and the thread peers' run the loops of `oneway` (see there): the same
// non-blocking push spin, the same non-blocking pop spin, the same ack cadence.

/// Word 0 of the ack segment: messages the consumer has taken so far.
const ACK: usize = 0;
/// Items per `push_slice`/`pop_slice` call of the slice line.
const SLICE: usize = 256;
/// Size of the messages of the byte-queue line of the message-rate table.
const MSG: usize = 64;

/// The measuring side of every one-way line: batches of items pushed through `push` (see
/// [`produce`]), each batch waited for until `ack` (the consumer's count) has all of it.
fn measure_tp(
    cfg: &Cfg,
    ack: &AtomicU64,
    mut push: impl FnMut(u64, u64) -> Result<u64, BoxError>,
) -> Result<Vec<f64>, BoxError> {
    let mut sent = 0u64;
    harness::throughput(cfg, cfg.batch(TP_BATCH), |m| -> Result<(), BoxError> {
        produce(m, PATIENCE, &mut push)?;
        sent += m;
        if spin_until(PATIENCE, || ack.load(Ordering::Acquire) >= sent) {
            Ok(())
        } else {
            Err(format!(
                "the consumer acknowledged {} of {sent} items",
                ack.load(Ordering::Acquire)
            )
            .into())
        }
    })
}

/// One line of ours: the consumer is the child `role` (with `args`, then the ack segment's
/// name), the producer `push`. `push` owns the producer handle: it is dropped when the
/// measurement ends, which is how the child learns the end.
fn child_tp(
    cfg: &Cfg,
    p: Placement,
    role: &str,
    args: &[String],
    push: impl FnMut(u64, u64) -> Result<u64, BoxError>,
) -> Result<Vec<f64>, Miss> {
    let w = Words::create()?;
    let mut args = args.to_vec();
    args.push(w.name());
    let child = Child::start(role, p.child_cpu(), &args)?;
    let r = measure_tp(cfg, w.word(ACK), push);
    finish(child, r)
}

/// One non-blocking push of an item, as [`produce`] counts it.
#[inline]
fn pushed<T>(r: Result<(), TryPushError<T>>) -> Result<u64, BoxError> {
    match r {
        Ok(()) => Ok(1),
        Err(TryPushError::Full(_)) => Ok(0),
        Err(e) => Err(format!("try_push: {e}").into()),
    }
}

/// One non-blocking pop of an item, as [`consume`] counts it (the producer gone: the end).
#[inline]
fn popped(r: Result<u64, TryPopError>) -> Result<Pop, BoxError> {
    match r {
        Ok(v) => {
            std::hint::black_box(v);
            Ok(Pop::Got(1))
        }
        Err(TryPopError::Empty) => Ok(Pop::Empty),
        Err(TryPopError::Disconnected) => Ok(Pop::End),
        Err(e) => Err(format!("try_pop: {e}").into()),
    }
}

/// One-way throughput through one ring of a kind (`try_push`/`try_pop`, or slices of
/// [`SLICE`]) and its consumer child. Both sides keep the default wait strategy: the
/// protocol's cost when nobody sleeps is part of the line.
macro_rules! ring_throughput {
    ($Queue:ident, $tp:ident, $sink:ident, $sink_role:literal) => {
        fn $tp(cfg: &Cfg, p: Placement, slices: bool) -> Result<Vec<f64>, Miss> {
            harness::pin_to(p.parent_cpu());
            let n = SegmentName::unique();
            let q = $Queue::<u64>::builder(&n)
                .capacity(CAP)
                .create()
                .map_err(|e| format!("create: {e}"))?;
            let mut tx = q.producer().map_err(Miss::failed)?;
            let mut args = vec![n.as_str().to_owned()];
            if slices {
                args.push("slice".into());
                let chunk: Vec<u64> = (0..SLICE as u64).collect();
                child_tp(cfg, p, $sink_role, &args, move |_, left| {
                    let k = (left as usize).min(SLICE);
                    Ok(tx.push_slice(&chunk[..k]) as u64)
                })
            } else {
                args.push("single".into());
                child_tp(cfg, p, $sink_role, &args, move |i, _| {
                    pushed(tx.try_push(i))
                })
            }
        }

        fn $sink(a: &[String]) -> Result<(), BoxError> {
            let q = $Queue::<u64>::builder(&seg_name(arg(a, 0)?)?).open()?;
            let slices = arg(a, 1)? == "slice";
            let w = Words::open(arg(a, 2)?)?;
            let mut rx = q.consumer()?;
            if slices {
                let mut buf = [0u64; SLICE];
                consume(w.word(ACK), PATIENCE, || match rx.pop_slice(&mut buf) {
                    0 => popped(rx.try_pop()),
                    k => {
                        std::hint::black_box(&buf[..k]);
                        Ok(Pop::Got(k as u64))
                    }
                })?;
            } else {
                consume(w.word(ACK), PATIENCE, || popped(rx.try_pop()))?;
            }
            Ok(())
        }
    };
}

ring_throughput!(SpscQueue, spsc_tp, spsc_sink, "q-spsc-sink");
ring_throughput!(MpmcQueue, mpmc_tp, mpmc_sink, "q-mpmc-sink");

/// One-way throughput through an SPSC ring in chunks lent in place (rtrb's API): the producer
/// asks `write_chunk` for up to [`SLICE`] slots (for as many as are free when fewer are),
/// writes the item numbers into them and commits them all; the consumer asks `read_chunk` for
/// up to [`SLICE`] items, sums them (reading every item) and commits them all.
fn spsc_chunk_tp(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let q = SpscQueue::<u64>::builder(&n)
        .capacity(CAP)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    let mut tx = q.producer().map_err(Miss::failed)?;
    child_tp(
        cfg,
        p,
        "q-chunk-sink",
        &[n.as_str().into()],
        move |i, left| {
            let want = (left as usize).min(SLICE);
            let mut chunk = match tx.write_chunk(want) {
                Ok(c) => c,
                Err(ChunkError::TooFew { available: 0 }) => return Ok(0),
                Err(ChunkError::TooFew { available }) => tx
                    .write_chunk(available)
                    .map_err(|e| format!("write_chunk: {e}"))?,
                Err(e) => return Err(format!("write_chunk: {e}").into()),
            };
            let (a, b) = chunk.as_mut_slices();
            for (v, k) in a.iter_mut().chain(b.iter_mut()).zip(i..) {
                *v = k;
            }
            let k = chunk.len() as u64;
            chunk.commit_all();
            Ok(k)
        },
    )
}

fn chunk_sink(a: &[String]) -> Result<(), BoxError> {
    let q = SpscQueue::<u64>::builder(&seg_name(arg(a, 0)?)?).open()?;
    let w = Words::open(arg(a, 1)?)?;
    let mut rx = q.consumer()?;
    consume(w.word(ACK), PATIENCE, || {
        let chunk = match rx.read_chunk(SLICE) {
            Ok(c) => c,
            Err(ChunkError::TooFew { available: 0 }) => return popped(rx.try_pop()),
            Err(ChunkError::TooFew { available }) => rx
                .read_chunk(available)
                .map_err(|e| format!("read_chunk: {e}"))?,
            Err(ChunkError::Closed) => return Ok(Pop::End),
            Err(e) => return Err(format!("read_chunk: {e}").into()),
        };
        let (x, y) = chunk.as_slices();
        let sum = x.iter().chain(y).fold(0u64, |s, &v| s.wrapping_add(v));
        std::hint::black_box(sum);
        let k = chunk.len() as u64;
        chunk.commit_all();
        Ok(Pop::Got(k))
    })?;
    Ok(())
}

/// One-way message rate of [`MSG`]-byte messages through an SPSC byte queue of [`CAP`]
/// messages: `try_push` of a message buffer (its first 8 bytes the item number), and
/// `try_pop_into` a buffer on the other side.
fn bytes_tp(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let q = ByteQueue::builder(&n)
        .flavor(Flavor::Spsc)
        .capacity(CAP as u64)
        .max_message(MSG)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    let tx = q.producer().map_err(Miss::failed)?;
    let mut msg = [0u8; MSG];
    child_tp(cfg, p, "q-bytes-sink", &[n.as_str().into()], move |i, _| {
        msg[..8].copy_from_slice(&i.to_le_bytes());
        match tx.try_push(&msg[..]) {
            Ok(()) => Ok(1),
            Err(BytesTryPushError::Full(_)) => Ok(0),
            Err(e) => Err(format!("try_push: {e}").into()),
        }
    })
}

fn bytes_sink(a: &[String]) -> Result<(), BoxError> {
    let q = ByteQueue::builder(&seg_name(arg(a, 0)?)?)
        .flavor(Flavor::Spsc)
        .open()?;
    let w = Words::open(arg(a, 1)?)?;
    let rx = q.consumer()?;
    let mut buf = [0u8; MSG];
    consume(w.word(ACK), PATIENCE, || match rx.try_pop_into(&mut buf) {
        Ok(k) => {
            std::hint::black_box(&buf[..k]);
            Ok(Pop::Got(1))
        }
        Err(TryPopIntoError::Empty) => Ok(Pop::Empty),
        Err(TryPopIntoError::Disconnected) => Ok(Pop::End),
        Err(e) => Err(format!("try_pop_into: {e}").into()),
    })?;
    Ok(())
}

/// One-way throughput between this thread and a consumer thread, pinned per the placement,
/// with the loops of every other line (see [`oneway`](super::oneway)).
fn threads_tp(
    cfg: &Cfg,
    p: Placement,
    push: impl FnMut(u64, u64) -> Result<u64, BoxError>,
    mut pop: impl FnMut() -> Option<u64> + Send + 'static,
) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let ack = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (ack2, stop2) = (Arc::clone(&ack), Arc::clone(&stop));
    let cpu = p.child_cpu();
    let t = std::thread::spawn(move || {
        harness::pin_to(cpu);
        consume(&ack2, PATIENCE, || {
            Ok(match pop() {
                Some(v) => {
                    std::hint::black_box(v);
                    Pop::Got(1)
                }
                None if stop2.load(Ordering::Relaxed) => Pop::End,
                None => Pop::Empty,
            })
        })
    });
    let r = measure_tp(cfg, &ack, push);
    stop.store(true, Ordering::Relaxed);
    let consumed = t.join().map_err(|_| "consumer thread panicked")?;
    let r = r.map_err(Miss::from)?;
    consumed.map_err(Miss::from)?;
    Ok(r)
}

fn unix_tp(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let sock = SockPath::bind()?;
    let m = cfg.batch(TP_BATCH);
    let child = Child::start(
        "q-unix-sink",
        p.child_cpu(),
        &[sock.arg(), m.to_string(), "8".into()],
    )?;
    let mut s = sock.accept()?;
    let r = harness::throughput(cfg, m, |m| {
        for i in 0..m {
            write_full(&mut s, &i.to_le_bytes())?;
        }
        let mut ack = [0u8; 1];
        read_full(&mut s, &mut ack, false)
    });
    drop(s);
    finish(child, r)
}

/// Reads `m` messages of `size` bytes at a time (as much as each read returns), then writes a
/// one-byte ack; until the parent closes the socket.
fn unix_sink(a: &[String]) -> Result<(), BoxError> {
    let mut s = UnixStream::connect(arg(a, 0)?).map_err(|e| format!("connect: {e}"))?;
    let m = num(a, 1)?;
    let size = num(a, 2)?;
    let batch_bytes = m * size;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(k) => {
                got += k as u64;
                if got >= batch_bytes {
                    got -= batch_bytes;
                    write_full(&mut s, &[1])?;
                }
            }
        }
    }
}
