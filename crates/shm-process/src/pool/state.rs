//! The parent's bookkeeping, under the pool's lock: calls (jobs) and their undispatched items,
//! what each worker slot holds, dispatching, results, and what a worker's death fails.
//!
//! A call is a job of `n` items; items go out in chunks (a chunk is one *task*, as in Python);
//! several tasks may travel in one inbox message. Each slot has at most
//! [`MSGS_PER_WORKER`] messages outstanding, and its worker handles them in order, one at a
//! time, pushing one result message per task (more if a chunk's results do not fit one). So
//! the parent always knows which task a worker holds: the first unfinished task of the first
//! message that has left the inbox.

use super::error::TaskError;
use super::result::{Outcome, Sink};
use super::wire::{self, Reader};
use shm_queue::bytes::{ByteQueue, BytesConsumer, BytesProducer, TryPopIntoError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Messages a slot may have outstanding (one running, one waiting): enough that a worker never
/// waits for the parent, few enough that a long task holds back little.
pub(crate) const MSGS_PER_WORKER: usize = 2;
/// Capacity of an inbox, in messages (room for the outstanding ones and a replacement's).
pub(crate) const INBOX_CAPACITY: u64 = 4;
/// Capacity of an outbox, in messages.
pub(crate) const OUTBOX_CAPACITY: u64 = 64;
/// Most tasks in one inbox message.
const MAX_BATCH: usize = 256;
/// Workers in a row that may die before reporting ready before the pool gives up.
const MAX_START_FAILURES: u32 = 3;

/// One call: its encoded arguments and where its results go.
pub(crate) struct Job {
    pub(crate) func: u32,
    pub(crate) task: Arc<str>,
    /// The items' encodings, back to back.
    pub(crate) args: Vec<u8>,
    /// End offset of each item in `args`.
    pub(crate) ends: Vec<u32>,
    pub(crate) chunksize: u32,
    /// The next item to dispatch.
    next: u32,
    /// Items without an outcome yet.
    remaining: u32,
    sink: Option<Box<dyn Sink>>,
}

impl Job {
    pub(crate) fn new(
        func: u32,
        task: Arc<str>,
        args: Vec<u8>,
        ends: Vec<u32>,
        chunksize: u32,
        sink: Box<dyn Sink>,
    ) -> Job {
        let n = ends.len() as u32;
        Job {
            func,
            task,
            args,
            ends,
            chunksize: chunksize.max(1),
            next: 0,
            remaining: n,
            sink: Some(sink),
        }
    }

    fn len(&self) -> u32 {
        self.ends.len() as u32
    }

    fn item(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.args[start..self.ends[i] as usize]
    }
}

/// A task a slot holds: items `start..end` of a job, `received` of them answered.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    seq: u64,
    job: u32,
    start: u32,
    end: u32,
    received: u32,
}

/// Where a slot's worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Started, not yet ready (initializer running); its inbox already takes work.
    Starting,
    /// Serving.
    Ready,
    /// Spent its task budget and leaving.
    Retiring,
    /// No worker (dead, not yet replaced).
    Down,
}

/// A worker slot: its inbox and what it holds. The worker process itself, and the outbox, are
/// the result thread's.
pub(crate) struct Slot {
    pub(crate) inbox: ByteQueue,
    tx: BytesProducer,
    in_flight: VecDeque<InFlight>,
    /// Unfinished tasks of each outstanding message, oldest first.
    msgs: VecDeque<u32>,
    /// Tasks the current worker may still be given (`None`: no limit).
    budget: Option<u64>,
    pub(crate) state: SlotState,
    pub(crate) pid: u32,
}

impl Slot {
    pub(crate) fn new(inbox: ByteQueue, tx: BytesProducer) -> Slot {
        Slot {
            inbox,
            tx,
            in_flight: VecDeque::new(),
            msgs: VecDeque::new(),
            budget: None,
            state: SlotState::Down,
            pid: 0,
        }
    }

    fn takes_work(&self) -> bool {
        matches!(self.state, SlotState::Starting | SlotState::Ready)
            && self.msgs.len() < MSGS_PER_WORKER
            && self.budget != Some(0)
    }
}

/// A slot's outbox, from which the parent takes the worker's messages.
pub(crate) struct Outbox {
    pub(crate) queue: ByteQueue,
    pub(crate) rx: BytesConsumer,
}

/// The pool's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Takes work.
    Running,
    /// `close()` was called: finishes the queued work, then the workers leave.
    Closing,
    /// `terminate()` was called (or the pool dropped): stop now.
    Terminating,
}

/// Everything under the pool's lock.
pub(crate) struct State {
    pub(crate) phase: Phase,
    pub(crate) broken: Option<String>,
    jobs: Vec<Option<Job>>,
    free: Vec<u32>,
    /// Tasks to dispatch first: those a dead worker had taken but not started.
    requeued: VecDeque<(u32, u32, u32)>,
    /// Jobs with items not yet dispatched, oldest first.
    backlog: VecDeque<u32>,
    /// Chunks not yet dispatched (for the batch size).
    pending_chunks: usize,
    pub(crate) slots: Vec<Slot>,
    outboxes: Vec<Outbox>,
    buf: Vec<u8>,
    /// Slots whose worker broke the protocol, with what it did: the result thread replaces
    /// them.
    pub(crate) bad: Vec<(usize, String)>,
    next_seq: u64,
    scratch: Vec<u8>,
    max_message: usize,
    maxtasks: Option<u64>,
    /// Calls that have finished, to be finished (callbacks, publishing) outside the lock.
    pub(crate) completed: Vec<Box<dyn Sink>>,
    start_failures: u32,
    /// Unfinished calls, for readers without the lock.
    open: Arc<AtomicUsize>,
    /// Messages handled so far (wrapping).
    handled: u64,
}

impl State {
    pub(crate) fn new(
        slots: Vec<Slot>,
        outboxes: Vec<Outbox>,
        max_message: usize,
        maxtasks: Option<u64>,
        open: Arc<AtomicUsize>,
    ) -> State {
        State {
            open,
            handled: 0,
            outboxes,
            buf: vec![0; max_message],
            bad: Vec::new(),
            phase: Phase::Running,
            broken: None,
            jobs: Vec::new(),
            free: Vec::new(),
            requeued: VecDeque::new(),
            backlog: VecDeque::new(),
            pending_chunks: 0,
            slots,
            next_seq: 1,
            scratch: Vec::new(),
            max_message,
            maxtasks,
            completed: Vec::new(),
            start_failures: 0,
        }
    }

    /// Handles every message waiting in every outbox; whether there was any.
    pub(crate) fn collect(&mut self) -> bool {
        let before = self.handled;
        for slot in 0..self.outboxes.len() {
            if let Err(why) = self.drain(slot) {
                self.bad.push((slot, why));
            }
        }
        self.handled != before
    }

    /// Handles every message waiting in a slot's outbox.
    pub(crate) fn drain(&mut self, slot: usize) -> Result<(), String> {
        let mut buf = std::mem::take(&mut self.buf);
        let r = loop {
            match self.outboxes[slot].rx.try_pop_into(&mut buf) {
                Ok(n) => {
                    self.handled = self.handled.wrapping_add(1);
                    if let Err(e) = self.on_message(slot, &buf[..n]) {
                        break Err(e);
                    }
                }
                Err(TryPopIntoError::TooSmall { needed }) => buf.resize(needed, 0),
                Err(TryPopIntoError::Corrupt) => {
                    // The queue is poisoned for good (someone wrote garbage into it): this
                    // slot cannot be used again, and the pool cannot promise its calls.
                    let pid = self.slots[slot].pid;
                    self.break_pool(format!(
                        "the outbox of worker {slot} (pid {pid}) is corrupt"
                    ));
                    break Ok(());
                }
                Err(_) => break Ok(()),
            }
        };
        self.buf = buf;
        r
    }

    /// Whether no call is unfinished.
    pub(crate) fn is_idle(&self) -> bool {
        self.jobs.len() == self.free.len()
    }

    /// Takes a call and dispatches what can go now.
    pub(crate) fn submit(&mut self, job: Job) {
        self.open.fetch_add(1, Ordering::SeqCst);
        let chunks = job.len().div_ceil(job.chunksize) as usize;
        let id = match self.free.pop() {
            Some(id) => {
                self.jobs[id as usize] = Some(job);
                id
            }
            None => {
                self.jobs.push(Some(job));
                (self.jobs.len() - 1) as u32
            }
        };
        if let Some(reason) = self.broken.clone() {
            self.fail_range(id, 0, u32::MAX, &TaskError::PoolBroken { reason });
            return;
        }
        self.backlog.push_back(id);
        self.pending_chunks += chunks;
        self.dispatch();
    }

    /// A slot's new worker has started.
    pub(crate) fn started(&mut self, slot: usize, pid: u32) {
        let queued = self.slots[slot].in_flight.len() as u64;
        let s = &mut self.slots[slot];
        s.state = SlotState::Starting;
        s.pid = pid;
        s.budget = self.maxtasks.map(|m| m.saturating_sub(queued));
        self.dispatch();
    }

    /// Sends out work while some slot has room.
    pub(crate) fn dispatch(&mut self) {
        if self.broken.is_some() || self.phase == Phase::Terminating {
            return;
        }
        while !(self.requeued.is_empty() && self.backlog.is_empty()) {
            let active = self.slots.iter().filter(|s| s.takes_work()).count();
            let Some(slot) = (0..self.slots.len())
                .filter(|&i| self.slots[i].takes_work())
                .min_by_key(|&i| self.slots[i].in_flight.len())
            else {
                return;
            };
            let batch = (self.pending_chunks / (2 * active.max(1))).clamp(1, MAX_BATCH);
            if !self.fill_message(slot, batch) {
                return;
            }
        }
    }

    /// The next task to send: `(job, start, chunk end, from the requeue)`.
    fn next_task(&self) -> Option<(u32, u32, u32, bool)> {
        if let Some(&(job, start, end)) = self.requeued.front() {
            return Some((job, start, end, true));
        }
        let &job = self.backlog.front()?;
        let j = self.jobs[job as usize].as_ref()?;
        let end = j.next.saturating_add(j.chunksize).min(j.len());
        Some((job, j.next, end, false))
    }

    /// Builds one message of at most `batch` tasks for `slot` and pushes it. `false` if nothing
    /// could be sent.
    fn fill_message(&mut self, slot: usize, batch: usize) -> bool {
        let budget = self.slots[slot].budget.unwrap_or(u64::MAX);
        let limit = batch.min(usize::try_from(budget).unwrap_or(usize::MAX));
        let mut msg = std::mem::take(&mut self.scratch);
        msg.clear();
        msg.extend_from_slice(&0u32.to_le_bytes());
        let mut ntasks = 0usize;
        while ntasks < limit {
            let Some((job_id, start, chunk_end, requeued)) = self.next_task() else {
                break;
            };
            let Some(job) = self.jobs[job_id as usize].as_ref() else {
                // A job that finished while its chunk waited (cannot happen; stay safe).
                self.drop_front(requeued);
                continue;
            };
            let room = self.max_message.saturating_sub(msg.len());
            let mut used = wire::TASK_HEAD;
            let mut end = start;
            while end < chunk_end {
                let len = wire::ITEM_HEAD + job.item(end).len();
                if used + len > room {
                    break;
                }
                used += len;
                end += 1;
            }
            if end == start {
                if ntasks > 0 {
                    break; // the message is full
                }
                // One item alone does not fit a message: the submit check prevents this; fail
                // the item rather than stall.
                let task = job.task.clone();
                self.advance(job_id, start, start + 1, chunk_end, requeued);
                self.fail_range(
                    job_id,
                    start,
                    start + 1,
                    &TaskError::Codec {
                        task,
                        message: "the arguments do not fit the pool's messages".into(),
                    },
                );
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            msg.extend_from_slice(&seq.to_le_bytes());
            msg.extend_from_slice(&job.func.to_le_bytes());
            msg.extend_from_slice(&(end - start).to_le_bytes());
            for i in start..end {
                wire::put_blob(&mut msg, job.item(i));
            }
            self.slots[slot].in_flight.push_back(InFlight {
                seq,
                job: job_id,
                start,
                end,
                received: 0,
            });
            self.advance(job_id, start, end, chunk_end, requeued);
            ntasks += 1;
        }
        if ntasks == 0 {
            self.scratch = msg;
            return false;
        }
        msg[..4].copy_from_slice(&(ntasks as u32).to_le_bytes());
        let s = &mut self.slots[slot];
        let pushed = s.tx.try_push(&msg[..]).is_ok();
        self.scratch = msg;
        if pushed {
            s.msgs.push_back(ntasks as u32);
            if let Some(b) = &mut s.budget {
                *b = b.saturating_sub(ntasks as u64);
            }
        } else {
            // The inbox refused (closed or damaged): take the tasks back, stop using the slot;
            // the result thread replaces its worker.
            for _ in 0..ntasks {
                if let Some(t) = s.in_flight.pop_back() {
                    self.requeued.push_front((t.job, t.start, t.end));
                }
            }
            s.state = SlotState::Down;
            self.bad
                .push((slot, "its inbox refused a message".to_owned()));
        }
        true
    }

    /// Marks items `start..end` of a chunk ending at `chunk_end` as dispatched.
    fn advance(&mut self, job_id: u32, start: u32, end: u32, chunk_end: u32, requeued: bool) {
        if requeued {
            if end >= chunk_end {
                self.requeued.pop_front();
            } else if let Some(front) = self.requeued.front_mut() {
                front.1 = end;
            }
            return;
        }
        let _ = start;
        if let Some(job) = self.jobs[job_id as usize].as_mut() {
            job.next = end;
            if end >= chunk_end {
                self.pending_chunks = self.pending_chunks.saturating_sub(1);
            }
            if job.next >= job.len() {
                self.backlog.pop_front();
            }
        }
    }

    fn drop_front(&mut self, requeued: bool) {
        if requeued {
            self.requeued.pop_front();
        } else {
            self.backlog.pop_front();
        }
    }

    /// Records the outcome of item `index` of a job; finishes the job after its last item.
    fn deliver(&mut self, job_id: u32, index: u32, outcome: Outcome<'_>) {
        let Some(job) = self.jobs.get_mut(job_id as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Some(sink) = job.sink.as_mut() {
            sink.item(index as usize, outcome);
        }
        job.remaining = job.remaining.saturating_sub(1);
        if job.remaining == 0 {
            if let Some(sink) = self.jobs[job_id as usize].take().and_then(|j| j.sink) {
                self.completed.push(sink);
            }
            self.free.push(job_id);
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Fails items `start..end` (clamped to the job) with `err`.
    fn fail_range(&mut self, job_id: u32, start: u32, end: u32, err: &TaskError) {
        let Some(len) = self.jobs[job_id as usize].as_ref().map(Job::len) else {
            return;
        };
        for i in start..end.min(len) {
            self.deliver(job_id, i, Outcome::Error(err.clone()));
        }
    }

    /// Handles one message from a slot's worker.
    ///
    /// # Errors
    ///
    /// What is wrong with a message that breaks the protocol: the worker must be stopped.
    pub(crate) fn on_message(&mut self, slot: usize, msg: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(msg);
        match r.u8() {
            Some(wire::MSG_READY) => {
                let s = &mut self.slots[slot];
                if s.state == SlotState::Starting {
                    s.state = SlotState::Ready;
                }
                self.start_failures = 0;
                Ok(())
            }
            Some(wire::MSG_FATAL) => {
                let why = String::from_utf8_lossy(r.rest()).into_owned();
                let pid = self.slots[slot].pid;
                self.break_pool(format!("worker {pid}: {why}"));
                Ok(())
            }
            Some(wire::MSG_RETIRING) => {
                self.slots[slot].state = SlotState::Retiring;
                Ok(())
            }
            Some(wire::MSG_RESULT) => self.on_result(slot, &mut r),
            other => Err(format!("unknown message tag {other:?}")),
        }
    }

    fn on_result(&mut self, slot: usize, r: &mut Reader<'_>) -> Result<(), String> {
        let (Some(seq), Some(first), Some(n)) = (r.u64(), r.u32(), r.u32()) else {
            return Err("a truncated result head".into());
        };
        let Some(&t) = self.slots[slot].in_flight.front() else {
            return Err(format!(
                "a result for task {seq}, which the worker does not hold"
            ));
        };
        if t.seq != seq || first != t.received || n > t.end - t.start - t.received {
            return Err(format!(
                "a result for task {seq} items {first}+{n}; expected task {} from item {}",
                t.seq, t.received
            ));
        }
        let task = match self.jobs[t.job as usize].as_ref() {
            Some(j) => j.task.clone(),
            None => return Err("a result for a finished call".into()),
        };
        for k in 0..n {
            let (Some(tag), Some(bytes)) = (r.u8(), r.blob()) else {
                return Err("a truncated result item".into());
            };
            let text = || String::from_utf8_lossy(bytes).into_owned();
            let outcome = match tag {
                wire::OUT_OK => Outcome::Value(bytes),
                wire::OUT_FAILED => Outcome::Error(TaskError::Failed {
                    task: task.clone(),
                    message: text(),
                }),
                wire::OUT_PANICKED => Outcome::Error(TaskError::Panicked {
                    task: task.clone(),
                    message: text(),
                }),
                wire::OUT_TOO_LARGE => Outcome::Error(TaskError::ResultTooLarge {
                    task: task.clone(),
                    message: text(),
                }),
                _ => Outcome::Error(TaskError::Codec {
                    task: task.clone(),
                    message: text(),
                }),
            };
            self.deliver(t.job, t.start + t.received + k, outcome);
            if let Some(front) = self.slots[slot].in_flight.front_mut() {
                front.received += 1;
            }
        }
        let s = &mut self.slots[slot];
        if s.in_flight
            .front()
            .is_some_and(|f| f.start + f.received >= f.end)
        {
            s.in_flight.pop_front();
            if let Some(m) = s.msgs.front_mut() {
                *m = m.saturating_sub(1);
                if *m == 0 {
                    s.msgs.pop_front();
                }
            }
        }
        Ok(())
    }

    /// A slot's worker has ended (its outbox already drained): fail the task it held, put the
    /// rest of its current message back in line, and keep what still waits in its inbox for
    /// the replacement.
    pub(crate) fn on_exit(&mut self, slot: usize, how: &str) {
        let s = &mut self.slots[slot];
        let was_starting = s.state == SlotState::Starting;
        s.state = SlotState::Down;
        let pid = s.pid;
        let queued = s.inbox.len().min(s.msgs.len());
        let popped = s.msgs.len() - queued;
        let held_tasks: usize = s.msgs.iter().take(popped).map(|&m| m as usize).sum();
        let held: Vec<InFlight> = s
            .in_flight
            .drain(..held_tasks.min(s.in_flight.len()))
            .collect();
        s.msgs.drain(..popped);
        for (k, t) in held.iter().enumerate().rev() {
            if k > 0 {
                self.requeued
                    .push_front((t.job, t.start + t.received, t.end));
            }
        }
        if let Some(t) = held.first() {
            if let Some(task) = self.jobs[t.job as usize].as_ref().map(|j| j.task.clone()) {
                for i in t.start + t.received..t.end {
                    let err = TaskError::WorkerDied {
                        task: task.clone(),
                        item: i as usize,
                        pid,
                        how: how.to_owned(),
                    };
                    self.deliver(t.job, i, Outcome::Error(err));
                }
            }
        }
        if was_starting && self.broken.is_none() {
            self.start_failures += 1;
            if self.start_failures >= MAX_START_FAILURES {
                self.break_pool(format!(
                    "{} workers in a row ended before they were ready; the last (pid {pid}): {how}",
                    self.start_failures
                ));
            }
        }
        self.dispatch();
    }

    /// The pool cannot go on: fail everything, refuse (fail at once) what comes later.
    pub(crate) fn break_pool(&mut self, reason: String) {
        if self.broken.is_none() {
            self.broken = Some(reason.clone());
        }
        self.fail_all(&TaskError::PoolBroken { reason });
    }

    /// Fails every unfinished item of every call.
    pub(crate) fn fail_all(&mut self, err: &TaskError) {
        for s in 0..self.slots.len() {
            let held: Vec<InFlight> = self.slots[s].in_flight.drain(..).collect();
            self.slots[s].msgs.clear();
            for t in held {
                self.fail_range(t.job, t.start + t.received, t.end, err);
            }
        }
        while let Some((job, start, end)) = self.requeued.pop_front() {
            self.fail_range(job, start, end, err);
        }
        while let Some(job) = self.backlog.pop_front() {
            if let Some(next) = self.jobs[job as usize].as_ref().map(|j| j.next) {
                self.fail_range(job, next, u32::MAX, err);
            }
        }
        self.pending_chunks = 0;
    }
}

#[cfg(test)]
mod tests {
    //! The bookkeeping on heap queues, with this thread playing the worker.

    use super::*;
    use shm_queue::bytes::{BytesConsumer, Flavor};
    use std::sync::Mutex;

    type Seen = Arc<Mutex<Vec<(usize, Result<Vec<u8>, TaskError>)>>>;

    /// Records every item it gets.
    struct Recorder(Seen, Arc<Mutex<bool>>);

    impl Sink for Recorder {
        fn item(&mut self, index: usize, outcome: Outcome<'_>) {
            let v = match outcome {
                Outcome::Value(b) => Ok(b.to_vec()),
                Outcome::Error(e) => Err(e),
            };
            self.0.lock().unwrap().push((index, v));
        }

        fn finish(self: Box<Self>) {
            *self.1.lock().unwrap() = true;
        }
    }

    /// The worker's ends of a slot.
    struct FakeWorker {
        rx: BytesConsumer,
        tx: BytesProducer,
    }

    impl FakeWorker {
        /// Pops one task message: `(seq, items)` per task.
        fn pop(&self) -> Vec<(u64, Vec<Vec<u8>>)> {
            let msg = self.rx.try_pop().expect("a task message");
            let mut r = Reader::new(&msg);
            let n = r.u32().unwrap();
            (0..n)
                .map(|_| {
                    let (seq, _f, k) = (r.u64().unwrap(), r.u32().unwrap(), r.u32().unwrap());
                    (seq, (0..k).map(|_| r.blob().unwrap().to_vec()).collect())
                })
                .collect()
        }

        /// Answers items `first..` of task `seq` with their own bytes.
        fn answer(&self, seq: u64, first: u32, items: &[Vec<u8>]) {
            let mut m = vec![wire::MSG_RESULT];
            m.extend_from_slice(&seq.to_le_bytes());
            m.extend_from_slice(&first.to_le_bytes());
            m.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for it in items {
                m.push(wire::OUT_OK);
                wire::put_blob(&mut m, it);
            }
            self.tx.try_push(m).unwrap();
        }
    }

    fn pool(slots: usize, maxtasks: Option<u64>) -> (State, Vec<FakeWorker>) {
        let mut ss = Vec::new();
        let mut outs = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..slots {
            let inbox = ByteQueue::heap(Flavor::Spsc, INBOX_CAPACITY, 4096).unwrap();
            let outbox = ByteQueue::heap(Flavor::Spsc, OUTBOX_CAPACITY, 4096).unwrap();
            let tx = inbox.producer().unwrap();
            let rx = outbox.consumer().unwrap();
            workers.push(FakeWorker {
                rx: inbox.consumer().unwrap(),
                tx: outbox.producer().unwrap(),
            });
            ss.push(Slot::new(inbox, tx));
            outs.push(Outbox { queue: outbox, rx });
        }
        let mut st = State::new(ss, outs, 4096, maxtasks, Arc::default());
        for i in 0..slots {
            st.started(i, 100 + i as u32);
        }
        (st, workers)
    }

    fn job(n: u8, chunksize: u32) -> (Job, Seen, Arc<Mutex<bool>>) {
        let seen = Seen::default();
        let done = Arc::new(Mutex::new(false));
        let args: Vec<u8> = (0..n).collect();
        let ends: Vec<u32> = (1..=u32::from(n)).collect();
        let sink = Box::new(Recorder(seen.clone(), done.clone()));
        (
            Job::new(0, "t".into(), args, ends, chunksize, sink),
            seen,
            done,
        )
    }

    #[test]
    fn dispatches_in_batches_and_refills_as_results_come() {
        let (mut st, w) = pool(1, None);
        let (j, seen, done) = job(40, 1);
        st.submit(j);
        // 40 chunks, one slot: the first message carries 40 / (2 * 1) tasks.
        let first = w[0].pop();
        assert_eq!(first.len(), 20);
        let mut outstanding = vec![first];
        let mut rounds = 0;
        while !st.is_idle() {
            rounds += 1;
            assert!(rounds < 100, "no progress");
            let queued = st.slots[0].inbox.len();
            assert!(outstanding.len() + queued <= MSGS_PER_WORKER);
            for _ in 0..queued {
                outstanding.push(w[0].pop());
            }
            for (seq, items) in outstanding.drain(..).flatten() {
                w[0].answer(seq, 0, &items);
            }
            st.collect();
            st.dispatch();
            assert!(st.bad.is_empty(), "{:?}", st.bad);
        }
        assert_eq!(st.completed.len(), 1);
        st.completed.pop().unwrap().finish();
        assert!(*done.lock().unwrap());
        let mut got = seen.lock().unwrap().clone();
        got.sort_by_key(|g| g.0);
        let want: Vec<_> = (0..40).map(|i| (i, Ok(vec![i as u8]))).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_death_fails_the_held_task_requeues_the_rest_and_keeps_the_inbox() {
        let (mut st, w) = pool(1, None);
        let (j, seen, _) = job(12, 2);
        st.submit(j);
        // 6 chunks of 2: messages of 3 tasks, two outstanding.
        let m1 = w[0].pop();
        assert_eq!(m1.len(), 3);
        // The worker answers task 1, half of task 2, then dies.
        w[0].answer(m1[0].0, 0, &m1[0].1);
        w[0].answer(m1[1].0, 0, &m1[1].1[..1]);
        st.collect();
        st.dispatch();
        st.on_exit(0, "killed by signal 9 (SIGKILL)");
        let got = seen.lock().unwrap().clone();
        let died: Vec<usize> = got.iter().filter(|g| g.1.is_err()).map(|g| g.0).collect();
        assert_eq!(
            died,
            [3],
            "only the unanswered item of the held task fails: {got:?}"
        );
        match &got.iter().find(|g| g.0 == 3).unwrap().1 {
            Err(TaskError::WorkerDied { pid, item, .. }) => assert_eq!((*pid, *item), (100, 3)),
            other => panic!("{other:?}"),
        }
        // A replacement finds the second message in the inbox, then the requeued task 3.
        st.started(0, 200);
        let m2 = w[0].pop();
        assert_eq!(m2.len(), 1);
        assert_eq!(m2[0].1, [vec![6], vec![7]]);
        for (seq, items) in &m2 {
            w[0].answer(*seq, 0, items);
        }
        st.collect();
        st.dispatch();
        let m3 = w[0].pop();
        assert_eq!(m3[0].1, [vec![4], vec![5]], "the requeued task goes first");
        for (seq, items) in &m3 {
            w[0].answer(*seq, 0, items);
        }
        st.collect();
        st.dispatch();
        // The rest goes out as room frees up.
        while !st.is_idle() {
            for (seq, items) in w[0].pop() {
                w[0].answer(seq, 0, &items);
            }
            st.collect();
            st.dispatch();
        }
        assert_eq!(st.completed.len(), 1);
        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 12);
        assert_eq!(got.iter().filter(|g| g.1.is_ok()).count(), 11);
    }

    #[test]
    fn a_worker_gets_no_more_tasks_than_its_budget() {
        let (mut st, w) = pool(1, Some(3));
        let (j, _, _) = job(10, 1);
        st.submit(j);
        // However the dispatcher batches, 3 tasks in all go to this worker.
        let mut tasks = 0;
        while let Ok(msg) = w[0].rx.try_pop() {
            tasks += Reader::new(&msg).u32().unwrap();
        }
        assert_eq!(tasks, 3);
    }

    #[test]
    fn protocol_violations_are_errors_not_panics() {
        let (mut st, _w) = pool(1, None);
        assert!(st.on_message(0, &[]).is_err());
        assert!(st.on_message(0, &[99]).is_err());
        assert!(st.on_message(0, &[wire::MSG_RESULT, 1, 2]).is_err());
        let mut m = vec![wire::MSG_RESULT];
        m.extend_from_slice(&7u64.to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        assert!(st.on_message(0, &m).is_err(), "a result for no task");
        let (j, _, _) = job(1, 1);
        st.submit(j);
        assert!(st.on_message(0, &m).is_err(), "a result for another task");
        assert!(st.on_message(0, &[wire::MSG_READY]).is_ok());
        assert_eq!(st.slots[0].state, SlotState::Ready);
    }

    #[test]
    fn init_failure_breaks_the_pool_and_fails_everything() {
        let (mut st, _w) = pool(2, None);
        let (j, seen, _) = job(4, 1);
        st.submit(j);
        let mut m = vec![wire::MSG_FATAL];
        m.extend_from_slice(b"no database");
        st.on_message(1, &m).unwrap();
        assert!(st.broken.as_deref().unwrap().contains("no database"));
        assert_eq!(st.completed.len(), 1);
        assert!(seen
            .lock()
            .unwrap()
            .iter()
            .all(|g| matches!(g.1, Err(TaskError::PoolBroken { .. }))));
        // Later calls fail at once.
        let (j, seen, _) = job(2, 1);
        st.submit(j);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn workers_that_die_before_ready_break_the_pool_after_a_few() {
        let (mut st, _w) = pool(1, None);
        for k in 0..MAX_START_FAILURES {
            assert!(st.broken.is_none());
            st.on_exit(0, "exit code 1");
            st.started(0, 300 + k);
        }
        assert!(st.broken.as_deref().unwrap().contains("exit code 1"));
    }
}
