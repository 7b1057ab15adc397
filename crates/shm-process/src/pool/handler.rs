//! The pool's result thread: drains the workers' outboxes, refills their inboxes, runs the
//! callbacks, watches and replaces workers, and carries out `close` and `terminate`.
//!
//! It owns the worker processes (so daemon workers die with it, however the parent ends) and
//! the outboxes; everything else is in [`State`] under the pool's lock.

use super::result::Sink;
use super::spawn::Worker;
use super::state::{Phase, SlotState, State};
use super::wire::{ControlBlock, WorkerConfig};
use shm_core::{Deadline, WaitStrategy};
use shm_queue::bytes::{ByteQueue, BytesConsumer, BytesPopError};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a busy result thread checks that its workers live.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// Longest wait while a worker is being replaced or the pool winds down.
const SHORT_WAIT: Duration = Duration::from_millis(2);

/// What the pool and its result thread share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) ctl: ControlBlock,
    /// Set (then the eventcount notified) to make the result thread look at the phase.
    pub(crate) wake: AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock runs user code but sinks' item decoding, which does not
        // panic; a poisoned lock still holds consistent bookkeeping.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the result thread look at the phase now.
    pub(crate) fn wake(&self) {
        self.wake.store(true, Ordering::Release);
        self.ctl.results().notify_all();
    }
}

/// The result thread's own part of a slot.
pub(crate) struct Outbox {
    pub(crate) queue: ByteQueue,
    pub(crate) rx: BytesConsumer,
}

/// What the result thread needs to start workers.
pub(crate) struct Spawner {
    pub(crate) program: Option<PathBuf>,
    pub(crate) base: String,
    pub(crate) maxtasks: u64,
    pub(crate) init: Option<(u32, u64, Vec<u8>)>,
    pub(crate) strategy: WaitStrategy,
}

impl Spawner {
    fn start(&self, slot: usize) -> io::Result<Worker> {
        let cfg = WorkerConfig {
            base: self.base.clone(),
            slot: slot as u32,
            maxtasks: self.maxtasks,
            init: self.init.clone(),
            strategy: super::wire::strategy_to_wire(&self.strategy),
        };
        Worker::start(self.program.as_deref(), cfg.encode())
    }
}

/// The result thread's main.
pub(crate) fn run(
    shared: Arc<Shared>,
    outboxes: Vec<Outbox>,
    spawner: Spawner,
    started: mpsc::Sender<io::Result<()>>,
) {
    let mut workers: Vec<Option<Worker>> = Vec::with_capacity(outboxes.len());
    for slot in 0..outboxes.len() {
        match spawner.start(slot) {
            Ok(w) => {
                shared.lock().started(slot, w.pid());
                workers.push(Some(w));
            }
            Err(e) => {
                for w in workers.iter_mut().flatten() {
                    w.kill_and_reap();
                }
                let _ = started.send(Err(e));
                return;
            }
        }
    }
    let _ = started.send(Ok(()));
    Handler {
        shared,
        outboxes,
        workers,
        spawner,
        buf: Vec::new(),
        completed: Vec::new(),
    }
    .serve();
}

struct Handler {
    shared: Arc<Shared>,
    outboxes: Vec<Outbox>,
    workers: Vec<Option<Worker>>,
    spawner: Spawner,
    buf: Vec<u8>,
    completed: Vec<Box<dyn Sink>>,
}

impl Handler {
    fn serve(mut self) {
        self.buf = vec![0; self.outboxes.first().map_or(64, |o| o.rx.max_message())];
        let strategy = self.spawner.strategy;
        let mut last_check = Instant::now();
        let mut inboxes_closed = false;
        loop {
            let mut bad = Vec::new();
            let shared = self.shared.clone();
            let (phase, idle, broken) = {
                let mut st = shared.lock();
                for slot in 0..self.outboxes.len() {
                    if let Err(why) = self.drain(&mut st, slot) {
                        bad.push((slot, why));
                    }
                }
                st.dispatch();
                self.completed.append(&mut st.completed);
                (st.phase, st.is_idle(), st.broken.is_some())
            };
            self.finish_completed();

            if phase == Phase::Terminating || broken {
                self.stop_all(phase == Phase::Terminating);
                return;
            }
            for (slot, why) in bad {
                eprintln!("shm-process pool: worker {slot} broke the protocol ({why}); replacing it");
                if let Some(w) = self.workers[slot].as_mut() {
                    let how = w.kill_and_reap();
                    self.workers[slot] = None;
                    self.buried(slot, &how);
                }
            }
            let now = Instant::now();
            if now.duration_since(last_check) >= CHECK_EVERY {
                last_check = now;
                self.reap_ended();
            }
            let winding_down = phase == Phase::Closing && idle;
            if winding_down && !inboxes_closed {
                for s in &self.shared.lock().slots {
                    s.inbox.close();
                }
                inboxes_closed = true;
            }
            if winding_down && self.workers.iter().all(Option::is_none) {
                return;
            }
            if !winding_down {
                self.replace_dead();
            }

            let busy_slots = {
                let st = self.shared.lock();
                st.slots
                    .iter()
                    .any(|s| matches!(s.state, SlotState::Retiring | SlotState::Down))
            };
            let wait = if busy_slots || winding_down {
                SHORT_WAIT
            } else {
                strategy.slice.min(CHECK_EVERY * 10)
            };
            let outboxes = &self.outboxes;
            let wake = &self.shared.wake;
            self.shared
                .ctl
                .results()
                .wait_until(&strategy, Deadline::after(wait), |_| {
                    (wake.swap(false, Ordering::AcqRel)
                        || outboxes.iter().any(|o| !o.queue.is_empty()))
                    .then_some(())
                });
            if Instant::now().duration_since(last_check) >= wait {
                // A quiet stretch: look at the workers now rather than after the next burst.
                last_check = Instant::now() - CHECK_EVERY;
            }
        }
    }

    /// Handles every message waiting in a slot's outbox.
    fn drain(&mut self, st: &mut State, slot: usize) -> Result<(), String> {
        loop {
            match self.outboxes[slot].rx.try_pop_into(&mut self.buf) {
                Ok(n) => st.on_message(slot, &self.buf[..n])?,
                Err(BytesPopError::TooSmall { needed }) => self.buf.resize(needed, 0),
                Err(BytesPopError::Corrupt { len }) => {
                    return Err(format!("a corrupt message length {len} in its outbox"))
                }
                Err(_) => return Ok(()),
            }
        }
    }

    fn finish_completed(&mut self) {
        for sink in self.completed.drain(..) {
            sink.finish();
        }
    }

    /// Reaps workers that ended and settles their slots.
    fn reap_ended(&mut self) {
        for slot in 0..self.workers.len() {
            let Some(how) = self.workers[slot].as_mut().and_then(Worker::try_join) else {
                continue;
            };
            self.workers[slot] = None;
            self.buried(slot, &how);
        }
    }

    /// A slot's worker is dead and reaped: take its last messages, then settle what it held.
    fn buried(&mut self, slot: usize, how: &str) {
        let shared = self.shared.clone();
        let mut st = shared.lock();
        let drained = self.drain(&mut st, slot);
        st.on_exit(slot, how);
        self.completed.append(&mut st.completed);
        drop(st);
        if let Err(why) = drained {
            eprintln!("shm-process pool: worker {slot} left a bad message ({why})");
        }
        self.finish_completed();
    }

    /// Starts a worker in every slot that has none.
    fn replace_dead(&mut self) {
        for slot in 0..self.workers.len() {
            if self.workers[slot].is_some() {
                continue;
            }
            match self.spawner.start(slot) {
                Ok(w) => {
                    let mut st = self.shared.lock();
                    st.started(slot, w.pid());
                    self.completed.append(&mut st.completed);
                    drop(st);
                    self.workers[slot] = Some(w);
                }
                Err(e) => {
                    let mut st = self.shared.lock();
                    st.break_pool(format!("cannot start a replacement worker: {e}"));
                    self.completed.append(&mut st.completed);
                }
            }
        }
        self.finish_completed();
    }

    /// Kills every worker and fails what is left: `terminate`, or a broken pool.
    fn stop_all(&mut self, terminated: bool) {
        for w in self.workers.iter_mut().flatten() {
            w.kill_and_reap();
        }
        self.workers.iter_mut().for_each(|w| *w = None);
        let mut st = self.shared.lock();
        for s in &st.slots {
            s.inbox.close();
        }
        if terminated {
            st.fail_all(&super::error::TaskError::Terminated);
        } else if let Some(reason) = st.broken.clone() {
            st.fail_all(&super::error::TaskError::PoolBroken { reason });
        }
        self.completed.append(&mut st.completed);
        drop(st);
        self.finish_completed();
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        // Whatever ended the thread (even a panic), no worker outlives it unreaped.
        for w in self.workers.iter_mut().flatten() {
            w.kill_and_reap();
        }
    }
}
