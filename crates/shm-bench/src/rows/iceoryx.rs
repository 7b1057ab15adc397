//! iceoryx2 publish-subscribe as a peer (cargo feature `iceoryx2`): a `u64` round trip for
//! the queue rows and one-way byte-message throughput for the bytes rows.
//!
//! Each cell makes its own services under a name unique to the run and the cell. The child
//! tells the parent through a [`Words`] segment when its ports exist (a publisher only
//! delivers to subscribers that exist when it sends), and the parent tells it there when to
//! stop. Nodes whose process died (a killed child) are cleaned up after every cell.
//!
//! iceoryx2's blocking send (`UnableToDeliverStrategy::Block`) waits without a timeout, so a
//! dead subscriber would hang the run; the throughput row instead sends with `DiscardSample`
//! on a non-overflowing service and never lets more messages be in flight than the
//! subscriber's buffer holds (credits from the sink's acknowledgement word), checking that
//! every send reached the subscriber.

use super::bytes::{self, message, stamp, wait_ack, Sink, Size, ACK, BAD, PATIENCE};
use super::Miss;
use super::{arg, exit, finish};
use crate::error::{BoxError, Failure};
use crate::harness::{self, child_args, spin_until, Cfg, Child, Placement, Words};
use iceoryx2::prelude::*;
use shm_core::{Deadline, SegmentName};
use shm_process::Roles;
use std::sync::atomic::Ordering;
use std::sync::Once;
use std::time::Duration;

/// Word set by the child once its ports exist (words 0 and 1 are the sink's ACK and BAD).
const READY: usize = 2;
/// Word set by the parent to stop the child.
const STOP: usize = 3;
/// A child that has heard nothing for this long gives up (the parent died).
const CHILD_IDLE: Duration = Duration::from_secs(30);

type Svc = ipc::Service;

/// The iceoryx2 child roles; chain into [`crate::rows::roles`].
pub fn roles(r: Roles) -> Roles {
    r.role("ice-echo", |a| exit(echo(child_args(a))))
        .role("ice-sink", |a| exit(sink(child_args(a))))
}

/// A node of this process: quiet logs, no signal handlers of its own.
fn node() -> Result<Node<Svc>, BoxError> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| set_log_level(LogLevel::Error));
    Ok(NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()
        .map_err(|e| Failure::new("iceoryx2 node", e))?)
}

/// A fresh service name (`shm-bench/<pid>/<unique>/<what>`).
fn fresh_name(what: &str) -> String {
    format!(
        "shm-bench/{}/{}/{what}",
        std::process::id(),
        SegmentName::unique().as_str().trim_start_matches('/')
    )
}

fn service_name(s: &str) -> Result<ServiceName, BoxError> {
    Ok(ServiceName::new(s).map_err(|e| Failure::new(format!("iceoryx2 service name {s}"), e))?)
}

/// Removes what nodes of dead processes (a killed child) left behind.
fn cleanup_dead_nodes() {
    let _ = Node::<Svc>::list(Config::global_config(), |state| {
        if let NodeState::Dead(view) = state {
            let _ = view.remove_stale_resources();
        }
        CallbackProgression::Continue
    });
}

/// Removes iceoryx2's service and node directories and its root (`/tmp/iceoryx2`) if they
/// are empty: its nodes remove their files on drop but leave the directories behind.
fn remove_empty_dirs() {
    use std::os::unix::ffi::OsStrExt;
    let g = &Config::global_config().global;
    for p in [g.service_dir(), g.node_dir(), g.root_path().clone()] {
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(p.as_bytes()));
        // remove_dir fails (harmlessly) on a directory that is not empty.
        let _ = std::fs::remove_dir(path);
    }
}

/// Removes iceoryx2's empty directories when dropped: made before a cell's node, so dropped
/// after it, on every path out of the cell.
struct Tidy;

impl Drop for Tidy {
    fn drop(&mut self) {
        remove_empty_dirs();
    }
}

/// Tells the child to stop, joins it, and cleans up after dead nodes.
fn end(w: &Words, child: Child, r: Result<Vec<f64>, BoxError>) -> Result<Vec<f64>, Miss> {
    w.word(STOP).store(1, Ordering::Release);
    let out = finish(child, r);
    cleanup_dead_nodes();
    out
}

/// Waits for the child's READY (or its BAD on a failed start).
fn wait_ready(w: &Words) -> Result<(), BoxError> {
    let ready = || w.word(READY).load(Ordering::Acquire) != 0;
    let bad = || w.word(BAD).load(Ordering::Acquire) != 0;
    if spin_until(PATIENCE, || ready() || bad()) && ready() {
        Ok(())
    } else {
        Err("the iceoryx2 child did not set up its ports (see its stderr)".into())
    }
}

/// Spins in a child: a yield every 1024 polls; every 1024 polls also checks STOP and the idle
/// limit. Returns false when the child should stop.
struct Idle {
    n: u32,
    since: Deadline,
}

impl Idle {
    fn new() -> Idle {
        Idle {
            n: 0,
            since: Deadline::after(CHILD_IDLE),
        }
    }

    fn busy(&mut self) {
        self.n = 0;
    }

    fn spin(&mut self, w: &Words) -> bool {
        if self.n == 0 {
            self.since = Deadline::after(CHILD_IDLE);
        }
        self.n = self.n.wrapping_add(1);
        if self.n.is_multiple_of(1024) {
            if w.word(STOP).load(Ordering::Acquire) != 0 || self.since.has_passed() {
                return false;
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
        true
    }
}

// ---- u64 round trip ------------------------------------------------------------------------

/// Round trip of a `u64`: the parent publishes on `ping`, the child echoes on `pong`; both
/// busy-poll `receive()`.
pub fn rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let _tidy = Tidy;
    let node = node()?;
    let (ping_name, pong_name) = (fresh_name("ping"), fresh_name("pong"));
    let mk = |n: &str| -> Result<_, BoxError> {
        Ok(node
            .service_builder(&service_name(n)?)
            .publish_subscribe::<u64>()
            .max_publishers(1)
            .max_subscribers(1)
            .max_nodes(2)
            .history_size(0)
            .create()
            .map_err(|e| Failure::new(format!("iceoryx2 service {n}"), e))?)
    };
    let (ping, pong) = (mk(&ping_name)?, mk(&pong_name)?);
    let tx = ping
        .publisher_builder()
        .create()
        .map_err(|e| Failure::new("iceoryx2 publisher", e))?;
    let rx = pong
        .subscriber_builder()
        .create()
        .map_err(|e| Failure::new("iceoryx2 subscriber", e))?;
    let w = Words::create()?;
    let child = Child::start("ice-echo", p.child_cpu(), &[ping_name, pong_name, w.name()])?;
    let r = wait_ready(&w).and_then(|()| {
        let mut i = 0u64;
        harness::per_op(cfg, || -> Result<(), BoxError> {
            i += 1;
            match tx.send_copy(i) {
                Ok(1) => {}
                Ok(n) => return Err(format!("iceoryx2 send reached {n} subscribers, not 1").into()),
                Err(e) => return Err(Failure::new("iceoryx2 send", e).into()),
            }
            let mut got = None;
            let mut err = None;
            let ok = spin_until(PATIENCE, || match rx.receive() {
                Ok(Some(s)) => {
                    got = Some(*s.payload());
                    true
                }
                Ok(None) => false,
                Err(e) => {
                    err = Some(Failure::new("iceoryx2 receive", e));
                    true
                }
            });
            match (ok, got, err) {
                (_, _, Some(e)) => Err(e.into()),
                (true, Some(v), _) if v == i => Ok(()),
                (true, Some(v), _) => Err(format!("echo returned {v}, sent {i}").into()),
                _ => Err("the iceoryx2 echo timed out".into()),
            }
        })
    });
    drop((tx, rx));
    end(&w, child, r)
}

fn echo(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 2)?)?;
    let r = echo_inner(a, &w);
    if r.is_err() {
        w.word(BAD).store(1, Ordering::Release);
    }
    r
}

fn echo_inner(a: &[String], w: &Words) -> Result<(), BoxError> {
    let node = node()?;
    let open = |n: &str| -> Result<_, BoxError> {
        Ok(node
            .service_builder(&service_name(n)?)
            .publish_subscribe::<u64>()
            .open()
            .map_err(|e| Failure::new(format!("iceoryx2 open {n}"), e))?)
    };
    let (ping, pong) = (open(arg(a, 0)?)?, open(arg(a, 1)?)?);
    let rx = ping
        .subscriber_builder()
        .create()
        .map_err(|e| Failure::new("iceoryx2 subscriber", e))?;
    let tx = pong
        .publisher_builder()
        .create()
        .map_err(|e| Failure::new("iceoryx2 publisher", e))?;
    w.word(READY).store(1, Ordering::Release);
    let mut idle = Idle::new();
    loop {
        match rx.receive() {
            Ok(Some(s)) => {
                idle.busy();
                let v = *s.payload();
                drop(s);
                tx.send_copy(v)
                    .map_err(|e| Failure::new("iceoryx2 echo send", e))?;
            }
            Ok(None) => {
                if !idle.spin(w) {
                    return Ok(());
                }
            }
            Err(e) => return Err(Failure::new("iceoryx2 receive", e).into()),
        }
    }
}

// ---- byte-message throughput ---------------------------------------------------------------

/// One-way throughput of `s.bytes`-byte messages: `[u8]` samples loaned, written from the
/// stamped message and sent; the child copies each payload out, checks it, and acknowledges.
pub fn bytes_tp(cfg: &Cfg, p: Placement, s: Size) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let _tidy = Tidy;
    let node = node()?;
    let name = fresh_name("bytes");
    let buf = bytes::ring_capacity(s.bytes);
    let buf_usize = buf as usize;
    let svc = node
        .service_builder(&service_name(&name)?)
        .publish_subscribe::<[u8]>()
        .max_publishers(1)
        .max_subscribers(1)
        .max_nodes(2)
        .history_size(0)
        .subscriber_max_buffer_size(buf_usize)
        .subscriber_max_borrowed_samples(1)
        .enable_safe_overflow(false)
        .create()
        .map_err(|e| Failure::new(format!("iceoryx2 service {name}"), e))?;
    let tx = svc
        .publisher_builder()
        .initial_max_slice_len(s.bytes)
        .max_loaned_samples(1)
        .unable_to_deliver_strategy(UnableToDeliverStrategy::DiscardSample)
        .create()
        .map_err(|e| Failure::new("iceoryx2 publisher", e))?;
    let w = Words::create()?;
    let child = Child::start(
        "ice-sink",
        p.child_cpu(),
        &[name, w.name(), s.bytes.to_string()],
    )?;
    let mut msg = message(s.bytes);
    let mut sent = 0u64;
    // Messages that may be sent before the next look at the acknowledgements.
    let mut credit = buf;
    let r = wait_ready(&w).and_then(|()| {
        harness::throughput(cfg, cfg.batch(s.batch), |m| -> Result<(), BoxError> {
            for _ in 0..m {
                if sent >= credit {
                    wait_ack(&w, sent + 1 - buf)?;
                    credit = w.word(ACK).load(Ordering::Acquire) + buf;
                }
                stamp(&mut msg, sent);
                let sample = loan(&tx, s.bytes)?;
                match sample.write_from_slice(&msg).send() {
                    Ok(1) => {}
                    Ok(n) => {
                        return Err(format!(
                            "iceoryx2 send of message {sent} reached {n} subscribers, not 1"
                        )
                        .into())
                    }
                    Err(e) => return Err(Failure::new("iceoryx2 send", e).into()),
                }
                sent += 1;
            }
            wait_ack(&w, sent)
        })
    });
    drop(tx);
    end(&w, child, r)
}

type SamplePublisher = iceoryx2::port::publisher::Publisher<Svc, [u8], ()>;
type UninitSample =
    iceoryx2::sample_mut_uninit::SampleMutUninit<Svc, [std::mem::MaybeUninit<u8>], ()>;

/// Loans a sample of `len` bytes, retrying (until [`PATIENCE`]) while the pool is exhausted.
fn loan(tx: &SamplePublisher, len: usize) -> Result<UninitSample, BoxError> {
    let deadline = Deadline::after(PATIENCE);
    loop {
        match tx.loan_slice_uninit(len) {
            Ok(s) => return Ok(s),
            Err(e) => {
                if deadline.has_passed() {
                    return Err(Failure::new("iceoryx2 loan", e).into());
                }
                std::thread::yield_now();
            }
        }
    }
}

fn sink(a: &[String]) -> Result<(), BoxError> {
    let bytes = arg(a, 2)?
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= 9)
        .ok_or("bad message size")?;
    let mut sink = Sink::open(arg(a, 1)?, bytes)?;
    match sink_inner(a, &mut sink, bytes) {
        Ok(()) => Ok(()),
        Err(e) => sink.fail(e),
    }
}

fn sink_inner(a: &[String], sink: &mut Sink, bytes: usize) -> Result<(), BoxError> {
    let node = node()?;
    let n = arg(a, 0)?;
    let svc = node
        .service_builder(&service_name(n)?)
        .publish_subscribe::<[u8]>()
        .open()
        .map_err(|e| Failure::new(format!("iceoryx2 open {n}"), e))?;
    let rx = svc
        .subscriber_builder()
        .create()
        .map_err(|e| Failure::new("iceoryx2 subscriber", e))?;
    sink.words().word(READY).store(1, Ordering::Release);
    let mut buf = vec![0u8; bytes];
    let mut idle = Idle::new();
    loop {
        match rx.receive() {
            Ok(Some(s)) => {
                idle.busy();
                let payload = s.payload();
                if payload.len() != bytes {
                    return Err(format!("a sample of {} bytes, not {bytes}", payload.len()).into());
                }
                buf.copy_from_slice(payload);
                drop(s);
                sink.take(&buf)?;
            }
            Ok(None) => {
                if !idle.spin(sink.words()) {
                    return Ok(());
                }
            }
            Err(e) => return Err(Failure::new("iceoryx2 receive", e).into()),
        }
    }
}
