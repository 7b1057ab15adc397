//! The pool's result thread: drains the workers' outboxes, refills their inboxes, runs the
//! callbacks, watches and replaces workers, and carries out `close` and `terminate`.
//!
//! It owns the worker processes (so daemon workers die with it, however the parent ends) and
//! the outboxes; everything else is in [`State`] under the pool's lock.

use super::result::Sink;
use super::spawn::Worker;
use super::state::{Phase, SlotState, State};
use super::wire::{ControlBlock, WorkerConfig};
use shm_core::{Deadline, EventCount, WaitStrategy};
use shm_queue::bytes::ByteQueue;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often a busy result thread checks that its workers live.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// Longest wait while a worker is being replaced or the pool winds down.
const SHORT_WAIT: Duration = Duration::from_millis(2);
/// Longest sleep of the result thread while waiters collect results themselves.
const LOCAL_NAP: Duration = Duration::from_millis(20);

/// What the pool and its result thread share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) ctl: ControlBlock,
    /// Set (then an eventcount notified) to make the result thread look at the phase, the
    /// finished calls and the bad slots.
    pub(crate) wake: AtomicBool,
    /// Threads now waiting for a result on the workers' eventcount, collecting results
    /// themselves; while there are any, the result thread sleeps on `local`, so a worker wakes
    /// the waiter directly and the waiter gets its result without a hand-off.
    pub(crate) collectors: AtomicUsize,
    /// The result thread's in-process wake-up while collectors run.
    pub(crate) local: EventCount,
    /// Calls not yet finished (kept by the state, read here without the lock).
    pub(crate) open: Arc<AtomicUsize>,
    /// Whether the callers' waits spin (see [`super::spin`]).
    pub(crate) spin: super::spin::SpinGovernor,
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
        self.local.notify_all();
    }

    /// Collects results in a waiting caller's thread: calls without callbacks finish here,
    /// the others are left to the result thread (callbacks run there). Wakes the other
    /// collectors if anything arrived, since it may be theirs. Whether anything arrived.
    pub(crate) fn collect_now(&self) -> bool {
        let mut st = self.lock();
        let got = st.collect();
        st.dispatch();
        if !got && st.completed.is_empty() && st.bad.is_empty() {
            return false;
        }
        let all = std::mem::take(&mut st.completed);
        let mut mine = Vec::new();
        for sink in all {
            if sink.has_callbacks() {
                st.completed.push(sink);
            } else {
                mine.push(sink);
            }
        }
        let handler_needed = !st.completed.is_empty() || !st.bad.is_empty();
        drop(st);
        for sink in mine {
            sink.finish();
        }
        self.ctl.results().notify_all();
        if handler_needed {
            self.wake();
        }
        true
    }

    /// A waiter starts collecting.
    pub(crate) fn begin_collecting(&self) {
        self.collectors.fetch_add(1, Ordering::SeqCst);
    }

    /// A waiter stops collecting; the last one hands the outboxes back to the result thread,
    /// waking it only if some call is unfinished (a loop of `apply` calls leaves it asleep; it
    /// looks again within [`LOCAL_NAP`] anyway).
    pub(crate) fn end_collecting(&self) {
        if self.collectors.fetch_sub(1, Ordering::SeqCst) == 1
            && self.open.load(Ordering::SeqCst) != 0
        {
            self.local.notify_all();
        }
    }
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
    outboxes: Vec<ByteQueue>,
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
        completed: Vec::new(),
    }
    .serve();
}

struct Handler {
    shared: Arc<Shared>,
    /// The outboxes (clones of the queue handles in the state), to see whether any has
    /// messages without taking the lock.
    outboxes: Vec<ByteQueue>,
    workers: Vec<Option<Worker>>,
    spawner: Spawner,
    completed: Vec<Box<dyn Sink>>,
}

impl Handler {
    fn serve(mut self) {
        let strategy = self.spawner.strategy;
        let mut last_check = Instant::now();
        let mut inboxes_closed = false;
        let governor = super::spin::SpinGovernor::default();
        loop {
            let (phase, idle, broken, bad) = {
                let mut st = self.shared.lock();
                if st.collect() {
                    // Some may be items a sleeping collector waits for (imap).
                    self.shared.ctl.results().notify_all();
                }
                st.dispatch();
                self.completed.append(&mut st.completed);
                let bad = std::mem::take(&mut st.bad);
                (st.phase, st.is_idle(), st.broken.is_some(), bad)
            };
            self.finish_completed();

            if phase == Phase::Terminating || broken {
                self.stop_all(phase == Phase::Terminating);
                return;
            }
            for (slot, why) in bad {
                eprintln!(
                    "shm-process pool: worker {slot} broke the protocol ({why}); replacing it"
                );
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
            let shared = &*self.shared;
            let collecting = || shared.collectors.load(Ordering::SeqCst) > 0;
            if collecting() {
                // Waiters collect: stay out of their way until they stop or need us.
                let nap = wait.min(LOCAL_NAP);
                let sleep = WaitStrategy::sleep().with_slice(nap);
                shared.local.wait_until(&sleep, Deadline::after(nap), |_| {
                    (shared.wake.swap(false, Ordering::AcqRel) || !collecting()).then_some(())
                });
            } else {
                let chosen = governor.choose(strategy);
                let woken = shared.ctl.results().wait_until(
                    &chosen.strategy,
                    Deadline::after(wait),
                    |_| {
                        (shared.wake.swap(false, Ordering::AcqRel)
                            || collecting()
                            || outboxes.iter().any(|o| !o.is_empty()))
                        .then_some(())
                    },
                );
                if woken.is_some() {
                    governor.record(&chosen);
                }
            }
            if Instant::now().duration_since(last_check) >= wait {
                // A quiet stretch: look at the workers now rather than after the next burst.
                last_check = Instant::now() - CHECK_EVERY;
            }
        }
    }

    fn finish_completed(&mut self) {
        if self.completed.is_empty() {
            return;
        }
        for sink in self.completed.drain(..) {
            sink.finish();
        }
        // Waiters may sleep on the workers' eventcount rather than their result's.
        self.shared.ctl.results().notify_all();
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
        let mut st = self.shared.lock();
        let drained = st.drain(slot);
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
