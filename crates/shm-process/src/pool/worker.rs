//! The worker process: pops task messages from its inbox, runs them, pushes one result message
//! per task (so that a death loses at most the task it held) and notifies the parent.

use super::registry::{Failure, Registry};
use super::spin::SpinGovernor;
use super::wire::{self, ControlBlock, Reader, WorkerConfig};
use shm_queue::bytes::{ByteQueue, BytesProducer, Flavor, PopIntoError};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// Set while a task runs: its panics are captured instead of printed.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
    /// The message of the last captured panic.
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs a panic hook that records a task's panic message (with its location) instead of
/// printing it, and leaves other panics to the previous hook.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_TASK.with(Cell::get) {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            let msg = match info.location() {
                Some(at) => format!("{msg} (at {at})"),
                None => msg,
            };
            PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(msg));
        } else {
            previous(info);
        }
    }));
}

/// Runs `f` as a task: `Ok` with its result, or the panic's message.
fn run_task<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    IN_TASK.with(|t| t.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_TASK.with(|t| t.set(false));
    r.map_err(|_| {
        PANIC_MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "panicked".to_owned())
    })
}

/// The worker's connection to the parent.
struct Link {
    ctl: ControlBlock,
    outbox: BytesProducer,
    max: usize,
    /// Messages pushed since the parent was last woken.
    unnotified: Cell<u32>,
}

/// Results a worker pushes before it wakes the parent even in the middle of a message (well
/// under the outbox's capacity, so that a full outbox never waits for a parent nobody woke).
const NOTIFY_EVERY: u32 = 16;

impl Link {
    /// Pushes a message, waking the parent every [`NOTIFY_EVERY`] messages. `false` if the
    /// parent is gone.
    fn send(&self, msg: &[u8]) -> bool {
        let ok = self.outbox.push(msg).is_ok();
        let n = self.unnotified.get() + 1;
        if n >= NOTIFY_EVERY {
            self.flush();
        } else {
            self.unnotified.set(n);
        }
        ok
    }

    /// Wakes the parent if a message waits unannounced (at the end of each task message, so
    /// that an `apply` is answered at once and a batch costs one wake-up per 16 results).
    fn flush(&self) {
        if self.unnotified.get() > 0 {
            self.unnotified.set(0);
            self.ctl.results().notify_all();
        }
    }

    /// Pushes a message and wakes the parent at once.
    fn send_now(&self, msg: &[u8]) -> bool {
        let ok = self.send(msg);
        self.flush();
        ok
    }
}

/// The worker's main: `Ok` on a normal end (inbox closed, parent gone, task budget spent).
pub(crate) fn run(registry: &Registry, args: &[String]) -> Result<(), String> {
    let cfg = args
        .first()
        .and_then(|a| WorkerConfig::decode(a))
        .ok_or("started as a pool worker without a valid configuration argument")?;
    let ctl = ControlBlock::open(&wire::control_name(&cfg.base)?)?;
    let strategy = wire::strategy_from_wire(cfg.strategy);
    let open = |dir: char| -> Result<ByteQueue, String> {
        let name = wire::queue_name(&cfg.base, dir, cfg.slot)?;
        ByteQueue::builder(&name)
            .flavor(Flavor::Spsc)
            .open()
            .map_err(|e| format!("cannot open queue {name}: {e}"))
    };
    let inbox_q = open('i')?;
    let outbox_q = open('o')?;
    let mut inbox = inbox_q
        .consumer()
        .map_err(|e| format!("cannot take the inbox of worker {}: {e}", cfg.slot))?;
    let mut outbox = outbox_q
        .producer()
        .map_err(|e| format!("cannot take the outbox of worker {}: {e}", cfg.slot))?;
    inbox.set_wait_strategy(strategy);
    outbox.set_wait_strategy(strategy);
    let link = Link {
        max: outbox.max_message(),
        ctl,
        outbox,
        unnotified: Cell::new(0),
    };
    install_panic_hook();

    if link.ctl.fingerprint() != registry.fingerprint() {
        let msg = format!(
            "the worker's task registry ({} tasks: {}) differs from the parent's: \
             build both from the same registration code, in the same order",
            registry.len(),
            registry.names().collect::<Vec<_>>().join(", ")
        );
        fatal(&link, &msg);
        return Err(msg);
    }
    if let Some((index, signature, args)) = &cfg.init {
        let entry = registry
            .entry(*index)
            .filter(|e| e.signature == *signature)
            .ok_or_else(|| format!("initializer {index} is not in the worker's registry"))?;
        let mut scratch = Vec::new();
        let outcome = run_task(|| (entry.run)(args, &mut scratch));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(Failure::Failed(m))) => Some(format!("returned an error: {m}")),
            Ok(Err(Failure::Codec(m))) => Some(m),
            Err(m) => Some(format!("panicked: {m}")),
        };
        if let Some(why) = failure {
            let msg = format!("the initializer `{}` {why}", entry.name);
            fatal(&link, &msg);
            return Err(msg);
        }
    }
    if !link.send_now(&[wire::MSG_READY]) {
        return Ok(());
    }

    let mut buf = vec![0u8; inbox.max_message().max(64)];
    let mut out = Vec::with_capacity(link.max.min(1 << 16));
    let mut value = Vec::new();
    let mut done: u64 = 0;
    let governor = SpinGovernor::default();
    loop {
        let chosen = governor.choose(strategy);
        inbox.set_wait_strategy(chosen.strategy);
        let popped = inbox.pop_into(&mut buf);
        governor.record(&chosen);
        let n = match popped {
            Ok(n) => n,
            Err(PopIntoError::TooSmall { needed }) => {
                buf.resize(needed, 0);
                continue;
            }
            Err(PopIntoError::Closed | PopIntoError::Disconnected) => return Ok(()),
            Err(e) => {
                // A poisoned inbox stays poisoned: a replacement could not serve either.
                let msg = format!("worker {} cannot read its inbox: {e}", cfg.slot);
                fatal(&link, &msg);
                return Err(msg);
            }
        };
        let mut r = Reader::new(&buf[..n]);
        let ntasks = r.u32().ok_or("a task message without a head")?;
        for _ in 0..ntasks {
            let (Some(seq), Some(func), Some(nitems)) = (r.u64(), r.u32(), r.u32()) else {
                return Err("a truncated task message".into());
            };
            let entry = registry.entry(func);
            start_result(&mut out, seq, 0);
            let mut in_msg = 0u32;
            for item in 0..nitems {
                let args = r.blob().ok_or("a truncated task item")?;
                value.clear();
                let (tag, bytes): (u8, &[u8]) = match entry {
                    None => (wire::OUT_CODEC, b"unknown function index"),
                    Some(e) => match run_task(|| (e.run)(args, &mut value)) {
                        Ok(Ok(())) => (wire::OUT_OK, &value),
                        Ok(Err(Failure::Failed(m))) => {
                            value = m.into_bytes();
                            (wire::OUT_FAILED, &value)
                        }
                        Ok(Err(Failure::Codec(m))) => {
                            value = m.into_bytes();
                            (wire::OUT_CODEC, &value)
                        }
                        Err(m) => {
                            value = m.into_bytes();
                            (wire::OUT_PANICKED, &value)
                        }
                    },
                };
                let tag_bytes;
                let (tag, bytes) =
                    if wire::RESULT_HEAD + wire::OUTCOME_HEAD + bytes.len() > link.max {
                        tag_bytes = format!(
                            "{} bytes encoded, the pool's messages hold at most {}",
                            bytes.len(),
                            link.max - wire::RESULT_HEAD - wire::OUTCOME_HEAD
                        );
                        (wire::OUT_TOO_LARGE, tag_bytes.as_bytes())
                    } else {
                        (tag, bytes)
                    };
                if in_msg > 0 && out.len() + wire::OUTCOME_HEAD + bytes.len() > link.max {
                    // This item does not fit behind the others: send them, start a new message.
                    finish_result(&mut out, in_msg);
                    if !link.send(&out) {
                        return Ok(());
                    }
                    start_result(&mut out, seq, item);
                    in_msg = 0;
                }
                out.push(tag);
                wire::put_blob(&mut out, bytes);
                in_msg += 1;
            }
            finish_result(&mut out, in_msg);
            if !link.send(&out) {
                return Ok(());
            }
            done += 1;
            if cfg.maxtasks != 0 && done >= cfg.maxtasks {
                link.send_now(&[wire::MSG_RETIRING]);
                return Ok(());
            }
        }
        link.flush();
    }
}

fn fatal(link: &Link, msg: &str) {
    let mut out = vec![wire::MSG_FATAL];
    out.extend_from_slice(msg.as_bytes());
    out.truncate(link.max);
    link.send_now(&out);
}

/// Starts a result message for task `seq` from item `first`; the count is patched later.
fn start_result(out: &mut Vec<u8>, seq: u64, first: u32) {
    out.clear();
    out.push(wire::MSG_RESULT);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Writes the item count into a result message.
fn finish_result(out: &mut [u8], count: u32) {
    out[13..17].copy_from_slice(&count.to_le_bytes());
}
