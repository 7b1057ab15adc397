//! Byte-message rows: one-way throughput of 64 B, 4 KiB and 1 MiB messages between two
//! processes.
//!
//! Every message is fully written by the sender and fully read by the receiver (copied out of
//! the channel into the sink's buffer); our senders spin on a non-blocking send (no clock read
//! per message: a patience check every 1024 failed tries). The sender stamps each message with its sequence
//! number (the first 8 bytes, and the last byte) over a fixed fill pattern; the sinks of our
//! queues, ipc-channel and iceoryx2 check both stamps of every message. The sink publishes its
//! count in a shared word after every message; the parent waits for the whole batch at the
//! end of each batch.

use super::oneway::Idle;
use super::queue::{read_full, write_full, SockPath};
use super::{arg, exit, finish, seg_name};
use super::{case, Case, Group, Kind, Miss, Who, TWO};
use crate::error::BoxError;
use crate::harness::{self, child_args, spin_until, Cfg, Child, Placement, Words};
use shm_core::{SegmentName, WaitStrategy};
use shm_process::Roles;
use shm_queue::bytes::{ByteQueue, BytesTryPushError, Flavor, PopIntoError};
use shm_queue::pipe::{Pipe, RecvIntoError, TrySendError};
use shm_queue::PopError;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a side waits for its peer before calling the cell failed.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Word of the ack segment: messages the sink has received so far.
pub const ACK: usize = 0;
/// Word of the ack segment: non-zero once the sink found a bad message (it then exits).
pub const BAD: usize = 1;

/// Fill byte of the messages outside the stamps.
const FILL: u8 = 0xA5;

/// Ring memory of the shm-queue rows is at least this many bytes (and 8 messages).
const RING_BYTES: usize = 4 << 20;

/// One message size: a table of its own.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// The table's key.
    pub key: &'static str,
    /// Bytes per message.
    pub bytes: usize,
    /// Messages per batch (full mode).
    pub batch: u64,
}

/// The table of 1 MiB messages.
pub const KEY_1M: &str = "bytes-1m";
/// The loan line of the 1 MiB table.
pub const LOAN_LINE: &str = "shm-queue byte queue, loan (written once, read in place)";
/// The memcpy line of the 1 MiB table.
pub const MEMCPY_LINE: &str = "memcpy of 1 MiB into a ring-sized set of buffers, one process";

const SIZES: [(Size, &str, &str); 3] = [
    (
        Size {
            key: "bytes-64",
            bytes: 64,
            batch: 200_000,
        },
        "One-way throughput of 64 B messages between two processes",
        "one message, over batches of 200k",
    ),
    (
        Size {
            key: "bytes-4k",
            bytes: 4096,
            batch: 50_000,
        },
        "One-way throughput of 4 KiB messages between two processes",
        "one message, over batches of 50k",
    ),
    (
        Size {
            key: KEY_1M,
            bytes: 1 << 20,
            batch: 500,
        },
        "One-way throughput of 1 MiB messages between two processes",
        "one message, over batches of 500",
    ),
];

/// The bytes tables.
pub fn groups() -> Vec<Group> {
    SIZES
        .iter()
        .map(|&(s, title, op)| Group {
            key: s.key,
            area: "bytes",
            title,
            op,
            kind: Kind::Throughput {
                bytes: Some(s.bytes as u64),
            },
            placements: TWO,
        })
        .collect()
}

/// The bytes cases.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for &(s, _, _) in &SIZES {
        v.push(case(
            s.key,
            "shm-queue byte queue",
            Who::Ours,
            "busy-poll",
            move |c, p| queue_tp(c, p, s),
        ));
        v.push(case(
            s.key,
            "shm-queue Pipe",
            Who::Ours,
            "busy-poll",
            move |c, p| pipe_tp(c, p, s),
        ));
        v.push(case(
            s.key,
            "Unix socket",
            Who::Peer,
            "blocking",
            move |c, p| unix_tp(c, p, s),
        ));
        v.push(case(
            s.key,
            "ipc-channel (IpcBytesSender)",
            Who::Peer,
            "blocking recv",
            move |c, p| ipc_tp(c, p, s),
        ));
        v.push(case(
            s.key,
            "iceoryx2 publish-subscribe",
            Who::Peer,
            "receive, spin",
            move |c, p| iceoryx_tp(c, p, s),
        ));
        if s.key == KEY_1M {
            v.push(
                case(
                    s.key,
                    LOAN_LINE,
                    Who::Ours,
                    "default (spin, then sleep)",
                    move |c, p| loan_tp(c, p, s),
                )
                .fine(),
            );
            v.push(
                case(s.key, MEMCPY_LINE, Who::Floor, "-", move |c, p| {
                    memcpy_tp(c, p, s)
                })
                .fine(),
            );
        }
    }
    v
}

/// One `copy_from_slice` of a whole message per message, from one buffer of this process into
/// the next of a rotating set of destination buffers as large as the ring of the loan line
/// ([`ring_capacity`] messages): the memcpy bandwidth that a loan's one copy is held to, over
/// the same footprint (a destination that stays in cache would flatter the peer). No second
/// process and no queue; both columns run it on CPU 0.
fn memcpy_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let src = message(s.bytes);
    let slots = ring_capacity(s.bytes) as usize;
    let mut dst = vec![vec![0u8; s.bytes]; slots];
    let mut next = 0;
    let r = harness::throughput(cfg, cfg.batch(s.batch), |m| -> Result<(), Miss> {
        for _ in 0..m {
            dst[next].copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst[next]);
            next = (next + 1) % slots;
        }
        Ok(())
    });
    if dst.iter().any(|d| d != &src) {
        return Err(Miss::Failed("memcpy produced other bytes".into()));
    }
    r
}

/// The bytes rows' child roles (and, with the `iceoryx2` feature, iceoryx2's of both the
/// bytes and the queue rows).
pub fn roles(r: Roles) -> Roles {
    let r = r
        .role("b-queue-sink", |a| exit(queue_sink(child_args(a))))
        .role("b-pipe-sink", |a| exit(pipe_sink(child_args(a))))
        .role("b-loan-sink", |a| exit(loan_sink(child_args(a))))
        .role("b-ipc-sink", |a| exit(ipc_sink(child_args(a))));
    #[cfg(feature = "iceoryx2")]
    let r = super::iceoryx::roles(r);
    r
}

#[cfg(feature = "iceoryx2")]
fn iceoryx_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    crate::rows::iceoryx::bytes_tp(cfg, p, s)
}

#[cfg(not(feature = "iceoryx2"))]
fn iceoryx_tp(_: &Cfg, _: Placement, _: Size) -> Result<Vec<f64>, Miss> {
    Err(Miss::Skipped("built without the iceoryx2 feature".into()))
}

// ---- shared helpers ----------------------------------------------------------------------

fn size_arg(a: &[String], i: usize) -> Result<usize, BoxError> {
    arg(a, i)?
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= 9)
        .ok_or_else(|| format!("bad message size in argument {i}").into())
}

/// Capacity in messages of a ring of at least [`RING_BYTES`] (and at least 8 messages).
pub fn ring_capacity(bytes: usize) -> u64 {
    (RING_BYTES / bytes).max(8) as u64
}

/// A message buffer of `bytes` bytes filled with the pattern.
pub fn message(bytes: usize) -> Vec<u8> {
    vec![FILL; bytes]
}

/// Stamps message number `seq` into `msg` (first 8 bytes and last byte). `msg` has > 8 bytes.
#[inline]
pub fn stamp(msg: &mut [u8], seq: u64) {
    let n = msg.len();
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[n - 1] = seq as u8;
}

/// Checks that `msg` is message number `seq` of `bytes` bytes.
#[inline]
pub fn check(msg: &[u8], seq: u64, bytes: usize) -> Result<(), BoxError> {
    if msg.len() != bytes {
        return Err(format!("message {seq} has {} bytes, not {bytes}", msg.len()).into());
    }
    if msg[..8] != seq.to_le_bytes() || msg[bytes - 1] != seq as u8 {
        return Err(
            format!("message {seq} arrived with the wrong stamps (lost or reordered)").into(),
        );
    }
    Ok(())
}

/// The sink side's bookkeeping: counts and checks messages, publishes the count.
pub struct Sink {
    words: Words,
    got: u64,
    bytes: usize,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("got", &self.got)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Sink {
    /// Opens the ack words `name` for messages of `bytes` bytes.
    pub fn open(name: &str, bytes: usize) -> Result<Sink, BoxError> {
        Ok(Sink {
            words: Words::open(name)?,
            got: 0,
            bytes,
        })
    }

    /// Checks the next message and publishes the new count; on a bad message, raises the
    /// `BAD` flag so that the parent stops at once.
    #[inline]
    pub fn take(&mut self, msg: &[u8]) -> Result<(), BoxError> {
        if let Err(e) = check(msg, self.got, self.bytes) {
            self.words.word(BAD).store(1, Ordering::Release);
            return Err(e);
        }
        self.got += 1;
        self.words.word(ACK).store(self.got, Ordering::Release);
        Ok(())
    }

    /// The ack words (for rows that use more of them).
    #[cfg_attr(not(feature = "iceoryx2"), allow(dead_code))]
    pub fn words(&self) -> &Words {
        &self.words
    }

    /// Raises the `BAD` flag and returns `e` (a failed receive).
    pub fn fail(&self, e: impl Into<BoxError>) -> Result<(), BoxError> {
        self.words.word(BAD).store(1, Ordering::Release);
        Err(e.into())
    }
}

/// Waits until the sink has acknowledged `target` messages (or reported a bad one).
pub fn wait_ack(w: &Words, target: u64) -> Result<(), BoxError> {
    let done = || w.word(ACK).load(Ordering::Acquire) >= target;
    let bad = || w.word(BAD).load(Ordering::Acquire) != 0;
    if spin_until(PATIENCE, || done() || bad()) && !bad() {
        Ok(())
    } else if bad() {
        Err("the sink received a wrong message or failed (see its stderr)".into())
    } else {
        Err(format!(
            "the sink acknowledged {} of {target} messages",
            w.word(ACK).load(Ordering::Acquire)
        )
        .into())
    }
}

// ---- shm-queue byte queue ----------------------------------------------------------------

fn queue_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let q = ByteQueue::builder(&n)
        .flavor(Flavor::Spsc)
        .capacity(ring_capacity(s.bytes))
        .max_message(s.bytes)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    let mut tx = q.producer().map_err(Miss::failed)?;
    tx.set_wait_strategy(WaitStrategy::busy_poll());
    send_batches(cfg, p, s, "b-queue-sink", &n, move |msg| {
        match tx.try_push(msg) {
            Ok(()) => Ok(true),
            Err(BytesTryPushError::Full(_)) => Ok(false),
            Err(e) => Err(format!("try_push: {e}").into()),
        }
    })
}

/// Starts the sink `role` on segment `seg`, then sends batches of stamped messages through
/// `try_send` and waits for each batch's acknowledgement. `try_send` sends one message without
/// waiting: `Ok(false)` when the queue is full, and then it is tried again, spinning ([`Idle`]:
/// a yield and a patience check every 1024 tries, no clock read per message). `try_send` (and
/// the sender it owns) is dropped before the child is joined: that is how the sink learns the
/// end.
fn send_batches(
    cfg: &Cfg,
    p: Placement,
    s: Size,
    role: &str,
    seg: &SegmentName,
    mut try_send: impl FnMut(&[u8]) -> Result<bool, BoxError>,
) -> Result<Vec<f64>, Miss> {
    let w = Words::create()?;
    let child = Child::start(
        role,
        p.child_cpu(),
        &[seg.as_str().into(), w.name(), s.bytes.to_string()],
    )?;
    let mut msg = message(s.bytes);
    let mut sent = 0u64;
    let mut idle = Idle::new(PATIENCE);
    let r = harness::throughput(cfg, cfg.batch(s.batch), |m| {
        for _ in 0..m {
            stamp(&mut msg, sent);
            while !try_send(&msg)? {
                idle.spin(sent)?;
            }
            sent += 1;
        }
        wait_ack(&w, sent)
    });
    drop(try_send);
    finish(child, r)
}

fn queue_sink(a: &[String]) -> Result<(), BoxError> {
    let q = ByteQueue::builder(&seg_name(arg(a, 0)?)?)
        .flavor(Flavor::Spsc)
        .open()?;
    let bytes = size_arg(a, 2)?;
    let mut sink = Sink::open(arg(a, 1)?, bytes)?;
    let mut rx = q.consumer()?;
    rx.set_wait_strategy(WaitStrategy::busy_poll());
    let mut buf = vec![0u8; bytes];
    loop {
        match rx.pop_into(&mut buf) {
            Ok(n) => sink.take(&buf[..n])?,
            Err(PopIntoError::Disconnected | PopIntoError::Closed) => return Ok(()),
            Err(e) => return sink.fail(format!("pop: {e}")),
        }
    }
}

/// The zero-copy path, with the default wait protocol on both sides (a reader that found the
/// ring empty sleeps rather than spinning: a spinning reader on the other CPU was measured to
/// slow the writer's copy by about half on this machine): the producer fills a loan of the
/// ring's slot from its message buffer
/// (the one copy), the consumer reads the message in place (checking its stamps: a few bytes)
/// and drops it.
fn loan_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let q = ByteQueue::builder(&n)
        .flavor(Flavor::Spsc)
        .capacity(ring_capacity(s.bytes))
        .max_message(s.bytes)
        .create()
        .map_err(|e| format!("create: {e}"))?;
    let mut tx = q.producer().map_err(Miss::failed)?;
    send_batches(cfg, p, s, "b-loan-sink", &n, move |msg| {
        match tx.try_loan(msg.len()) {
            Ok(mut loan) => {
                loan.copy_from_slice(msg);
                loan.commit();
                Ok(true)
            }
            Err(BytesTryPushError::Full(_)) => Ok(false),
            Err(e) => Err(format!("try_loan: {e}").into()),
        }
    })
}

fn loan_sink(a: &[String]) -> Result<(), BoxError> {
    let q = ByteQueue::builder(&seg_name(arg(a, 0)?)?)
        .flavor(Flavor::Spsc)
        .open()?;
    let bytes = size_arg(a, 2)?;
    let mut sink = Sink::open(arg(a, 1)?, bytes)?;
    let mut rx = q.consumer()?;
    loop {
        match rx.read() {
            Ok(msg) => sink.take(&msg)?,
            Err(PopError::Disconnected | PopError::Closed) => return Ok(()),
            Err(e) => return sink.fail(format!("read: {e}")),
        }
    }
}

// ---- shm-queue Pipe ----------------------------------------------------------------------

/// The parent creates a duplex pipe and only sends (a one-way pipe's creator receives); the
/// child opens it and only receives.
fn pipe_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let mut end = Pipe::builder(&n)
        .duplex(true)
        .max_message(s.bytes)
        .capacity(ring_capacity(s.bytes))
        .create()
        .map_err(|e| format!("create pipe: {e}"))?;
    end.set_wait_strategy(WaitStrategy::busy_poll());
    send_batches(cfg, p, s, "b-pipe-sink", &n, move |msg| {
        match end.try_send_bytes(msg) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(e) => Err(format!("try_send_bytes: {e}").into()),
        }
    })
}

fn pipe_sink(a: &[String]) -> Result<(), BoxError> {
    let mut end = Pipe::builder(&seg_name(arg(a, 0)?)?).open()?;
    end.set_wait_strategy(WaitStrategy::busy_poll());
    let bytes = size_arg(a, 2)?;
    let mut sink = Sink::open(arg(a, 1)?, bytes)?;
    let mut buf = vec![0u8; bytes];
    loop {
        match end.recv_into(&mut buf) {
            Ok(n) => sink.take(&buf[..n])?,
            Err(RecvIntoError::Disconnected) => return Ok(()),
            Err(e) => return sink.fail(format!("recv: {e}")),
        }
    }
}

// ---- Unix socket -------------------------------------------------------------------------

/// One `write_all` per message; the child (`q-unix-sink` of the queue rows) reads in bulk and
/// acknowledges each batch with one byte.
fn unix_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let sock = SockPath::bind()?;
    let m = cfg.batch(s.batch);
    let child = Child::start(
        "q-unix-sink",
        p.child_cpu(),
        &[sock.arg(), m.to_string(), s.bytes.to_string()],
    )?;
    let mut sock_stream = sock.accept()?;
    let mut msg = message(s.bytes);
    let mut sent = 0u64;
    let r = harness::throughput(cfg, m, |m| {
        for _ in 0..m {
            stamp(&mut msg, sent);
            write_full(&mut sock_stream, &msg)?;
            sent += 1;
        }
        let mut ack = [0u8; 1];
        read_full(&mut sock_stream, &mut ack, false)
    });
    drop(sock_stream);
    finish(child, r)
}

// ---- ipc-channel -------------------------------------------------------------------------

fn ipc_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    use ipc_channel::ipc::{IpcBytesSender, IpcOneShotServer};
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let (server, server_name) =
        IpcOneShotServer::<IpcBytesSender>::new().map_err(|e| format!("ipc server: {e}"))?;
    let child = Child::start(
        "b-ipc-sink",
        p.child_cpu(),
        &[server_name, w.name(), s.bytes.to_string()],
    )?;
    // `accept` blocks until the child connects: accept on a thread so that a child that dies
    // first cannot hang the run.
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = got_tx.send(server.accept().map(|(_, tx)| tx));
    });
    let tx = match got_rx.recv_timeout(PATIENCE) {
        Ok(Ok(tx)) => tx,
        Ok(Err(e)) => return finish(child, Err(format!("ipc accept: {e}"))),
        Err(_) => {
            return finish(
                child,
                Err::<Vec<f64>, _>("the ipc-channel child did not connect"),
            )
        }
    };
    let mut msg = message(s.bytes);
    let mut sent = 0u64;
    let r = harness::throughput(cfg, cfg.batch(s.batch), |m| {
        for _ in 0..m {
            stamp(&mut msg, sent);
            tx.send(&msg).map_err(|e| format!("ipc send: {e}"))?;
            sent += 1;
        }
        wait_ack(&w, sent)
    });
    drop(tx);
    finish(child, r)
}

fn ipc_sink(a: &[String]) -> Result<(), BoxError> {
    use ipc_channel::ipc::{self, IpcBytesSender, IpcError, IpcSender};
    let bytes = size_arg(a, 2)?;
    let mut sink = Sink::open(arg(a, 1)?, bytes)?;
    let boot = IpcSender::<IpcBytesSender>::connect(arg(a, 0)?.to_owned())
        .map_err(|e| format!("ipc connect: {e}"))?;
    let (tx, rx) = ipc::bytes_channel()?;
    boot.send(tx).map_err(|e| format!("ipc bootstrap: {e}"))?;
    loop {
        match rx.recv() {
            Ok(v) => sink.take(&v)?,
            Err(IpcError::Disconnected) => return Ok(()),
            Err(e) => return sink.fail(format!("ipc recv: {e:?}")),
        }
    }
}
