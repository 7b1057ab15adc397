//! Results in the parent: [`AsyncResult`], the `imap` iterators, callbacks, and the sinks
//! through which the result thread delivers each item.

use super::error::{GetTimeoutError, TaskError};
use super::handler::Shared;
use serde::de::DeserializeOwned;
use shm_core::{Deadline, EventCount, WaitStrategy};
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// What the worker sent for one item.
pub(crate) enum Outcome<'a> {
    /// The encoded value.
    Value(&'a [u8]),
    /// The item failed.
    Error(TaskError),
}

/// Receives the items of one call in the result thread, under the pool's lock.
pub(crate) trait Sink: Send {
    /// Item `index` of the call finished.
    fn item(&mut self, index: usize, outcome: Outcome<'_>);
    /// Every item has finished: run callbacks and publish (outside the pool's lock).
    fn finish(self: Box<Self>);
    /// Whether `finish` runs user callbacks (then only the result thread may call it).
    fn has_callbacks(&self) -> bool {
        false
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave their data half-written (plain moves),
    // so a poisoned lock is still good.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn decode<R: DeserializeOwned>(task: &Arc<str>, outcome: Outcome<'_>) -> Result<R, TaskError> {
    match outcome {
        Outcome::Value(bytes) => postcard::from_bytes(bytes).map_err(|e| TaskError::Codec {
            task: task.clone(),
            message: format!(
                "cannot decode the result as {}: {e}",
                std::any::type_name::<R>()
            ),
        }),
        Outcome::Error(e) => Err(e),
    }
}

/// Runs a user callback in the result thread; a panic in it is reported and does not take the
/// result thread down.
fn run_callback(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        eprintln!("shm-process pool: a {what} panicked (ignored; the pool goes on)");
    }
}

/// The callbacks of an asynchronous call: Python's `callback` and `error_callback`.
///
/// Both run in the parent, in the pool's result thread (as Python runs them in its
/// result-handler thread), before the result becomes ready: keep them short, as Python's docs
/// ask, since results of other calls wait meanwhile. A panic in a callback is reported on
/// stderr and otherwise ignored.
///
/// ```
/// use shm_process::pool::Callbacks;
///
/// let cb = Callbacks::<u64>::new()
///     .callback(|v| println!("got {v}"))
///     .error_callback(|e| eprintln!("failed: {e}"));
/// # let _ = cb;
/// ```
pub struct Callbacks<T> {
    on_ok: Option<OnOk<T>>,
    on_err: Option<OnErr>,
}

type OnOk<T> = Box<dyn FnOnce(&T) + Send>;
type OnErr = Box<dyn FnOnce(&TaskError) + Send>;

impl<T> Callbacks<T> {
    /// No callbacks.
    pub fn new() -> Callbacks<T> {
        Callbacks {
            on_ok: None,
            on_err: None,
        }
    }

    /// Called with the value when the call succeeds.
    pub fn callback(mut self, f: impl FnOnce(&T) + Send + 'static) -> Self {
        self.on_ok = Some(Box::new(f));
        self
    }

    /// Called with the error when the call fails (for a map: the first failure to arrive).
    pub fn error_callback(mut self, f: impl FnOnce(&TaskError) + Send + 'static) -> Self {
        self.on_err = Some(Box::new(f));
        self
    }

    fn any(&self) -> bool {
        self.on_ok.is_some() || self.on_err.is_some()
    }

    fn run(self, result: &Result<T, TaskError>) {
        match result {
            Ok(v) => {
                if let Some(f) = self.on_ok {
                    run_callback("callback", || f(v));
                }
            }
            Err(e) => {
                if let Some(f) = self.on_err {
                    run_callback("error callback", || f(e));
                }
            }
        }
    }
}

impl<T> Default for Callbacks<T> {
    fn default() -> Self {
        Callbacks::new()
    }
}

impl<T> fmt::Debug for Callbacks<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("callback", &self.on_ok.is_some())
            .field("error_callback", &self.on_err.is_some())
            .finish()
    }
}

/// How a caller waits for results: it spins for the strategy's spin time collecting results
/// itself (no hand-off through the result thread), then sleeps until the result thread
/// delivers.
#[derive(Clone)]
pub(crate) struct Waiter {
    pub(crate) pool: Weak<Shared>,
    pub(crate) strategy: WaitStrategy,
}

impl Waiter {
    /// Waits until `check` gives a value or `deadline` passes. While the pool lives, the
    /// caller waits on the workers' eventcount with the pool's strategy and takes the results
    /// itself, so a worker's result reaches it with no thread in between; `ec` (the result's
    /// own eventcount) is for a pool that is gone.
    fn wait<T>(
        &self,
        ec: &EventCount,
        deadline: Deadline,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        if let Some(v) = check() {
            return Some(v);
        }
        let Some(pool) = self.pool.upgrade() else {
            return ec.wait_until(&self.strategy, deadline, |_| check());
        };
        let chosen = pool.spin.choose(self.strategy);
        pool.begin_collecting();
        // Each time results come in but not yet ours (a long map), wait afresh: the strategy
        // spins again while results flow, and sleeps only after a quiet spell.
        let got = loop {
            let step = pool
                .ctl
                .results()
                .wait_until(&chosen.strategy, deadline, |_| {
                    if let Some(v) = check() {
                        return Some(Some(v));
                    }
                    if pool.collect_now() {
                        return Some(check());
                    }
                    None
                });
            match step {
                Some(Some(v)) => break Some(v),
                Some(None) => continue,
                None => break None,
            }
        };
        pool.end_collecting();
        if got.is_some() {
            pool.spin.record(&chosen);
        }
        got
    }
}

/// Where a call's final result is published.
struct Cell<T> {
    ec: EventCount,
    done: AtomicBool,
    success: AtomicBool,
    value: Mutex<Option<Result<T, TaskError>>>,
}

impl<T> Cell<T> {
    fn new() -> Cell<T> {
        Cell {
            ec: EventCount::new(),
            done: AtomicBool::new(false),
            success: AtomicBool::new(false),
            value: Mutex::new(None),
        }
    }

    fn publish(&self, result: Result<T, TaskError>) {
        self.success.store(result.is_ok(), Ordering::Relaxed);
        *lock(&self.value) = Some(result);
        self.done.store(true, Ordering::Release);
        self.ec.notify_all();
    }
}

/// The result of an asynchronous call: Python's `AsyncResult`.
///
/// Made by [`Pool::apply_async`](super::Pool::apply_async),
/// [`map_async`](super::Pool::map_async) and [`starmap_async`](super::Pool::starmap_async).
/// It outlives the pool: a call that the pool could not finish (terminated, say) ends with an
/// error, never a hang.
///
/// [`get`](Self::get) takes the value and consumes the handle (Python's `get` can be repeated:
/// keep the value, or clone it, if you need it twice). While a caller waits it first spins for
/// the pool's [`WaitStrategy::spin`], taking results from the workers itself, then sleeps until
/// the pool's result thread delivers.
pub struct AsyncResult<T> {
    cell: Arc<Cell<T>>,
    waiter: Waiter,
}

impl<T> AsyncResult<T> {
    fn wait_deadline(&self, deadline: Deadline) -> bool {
        self.waiter
            .wait(&self.cell.ec, deadline, || {
                self.cell.done.load(Ordering::Acquire).then_some(())
            })
            .is_some()
    }

    /// Whether the call has finished (Python: `ready()`).
    pub fn ready(&self) -> bool {
        self.cell.done.load(Ordering::Acquire)
    }

    /// Whether the call finished without error; `None` while it runs (where Python raises
    /// `ValueError`).
    pub fn successful(&self) -> Option<bool> {
        self.ready()
            .then(|| self.cell.success.load(Ordering::Relaxed))
    }

    /// Waits until the call has finished (Python: `wait()`).
    pub fn wait(&self) {
        self.wait_deadline(Deadline::NEVER);
    }

    /// Waits at most `timeout`; whether the call has finished (Python: `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(timeout))
    }

    /// Waits for the call and returns its value (Python: `get()`).
    ///
    /// # Errors
    ///
    /// The [`TaskError`] of the task (for a map: of the first item that failed).
    pub fn get(self) -> Result<T, TaskError> {
        self.wait();
        self.take()
    }

    /// Waits at most `timeout` for the value (Python: `get(timeout)`).
    ///
    /// # Errors
    ///
    /// [`GetTimeoutError::Timeout`] with this handle if the call is still running, or
    /// [`GetTimeoutError::Task`] if it failed.
    pub fn get_timeout(self, timeout: Duration) -> Result<T, GetTimeoutError<T>> {
        if !self.wait_timeout(timeout) {
            return Err(GetTimeoutError::Timeout(self));
        }
        self.take().map_err(GetTimeoutError::Task)
    }

    fn take(self) -> Result<T, TaskError> {
        lock(&self.cell.value)
            .take()
            .unwrap_or(Err(TaskError::Terminated))
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .field("successful", &self.successful())
            .finish()
    }
}

/// The sink of `apply_async`: one item.
pub(crate) struct SingleSink<R> {
    task: Arc<str>,
    result: Option<Result<R, TaskError>>,
    callbacks: Callbacks<R>,
    cell: Arc<Cell<R>>,
}

impl<R: DeserializeOwned + Send + 'static> SingleSink<R> {
    pub(crate) fn make(
        task: Arc<str>,
        callbacks: Callbacks<R>,
        waiter: Waiter,
    ) -> (Box<dyn Sink>, AsyncResult<R>) {
        let cell = Arc::new(Cell::new());
        let sink = SingleSink {
            task,
            result: None,
            callbacks,
            cell: cell.clone(),
        };
        (Box::new(sink), AsyncResult { cell, waiter })
    }
}

impl<R: DeserializeOwned + Send + 'static> Sink for SingleSink<R> {
    fn has_callbacks(&self) -> bool {
        self.callbacks.any()
    }

    fn item(&mut self, _index: usize, outcome: Outcome<'_>) {
        if self.result.is_none() {
            self.result = Some(decode(&self.task, outcome));
        }
    }

    fn finish(self: Box<Self>) {
        let SingleSink {
            result,
            callbacks,
            cell,
            ..
        } = *self;
        let result = result.unwrap_or(Err(TaskError::Terminated));
        callbacks.run(&result);
        cell.publish(result);
    }
}

/// The sink of `map_async`: every item, in order; the first error to arrive wins.
pub(crate) struct MapSink<R> {
    task: Arc<str>,
    values: Vec<Option<R>>,
    error: Option<TaskError>,
    callbacks: Callbacks<Vec<R>>,
    cell: Arc<Cell<Vec<R>>>,
}

impl<R: DeserializeOwned + Send + 'static> MapSink<R> {
    pub(crate) fn make(
        task: Arc<str>,
        len: usize,
        callbacks: Callbacks<Vec<R>>,
        waiter: Waiter,
    ) -> (Box<dyn Sink>, AsyncResult<Vec<R>>) {
        let cell = Arc::new(Cell::new());
        let sink = MapSink {
            task,
            values: (0..len).map(|_| None).collect(),
            error: None,
            callbacks,
            cell: cell.clone(),
        };
        (Box::new(sink), AsyncResult { cell, waiter })
    }

    /// An empty map: ready at once (as Python's, without callbacks).
    pub(crate) fn empty(waiter: Waiter) -> AsyncResult<Vec<R>> {
        let cell = Arc::new(Cell::new());
        cell.publish(Ok(Vec::new()));
        AsyncResult { cell, waiter }
    }
}

impl<R: DeserializeOwned + Send + 'static> Sink for MapSink<R> {
    fn has_callbacks(&self) -> bool {
        self.callbacks.any()
    }

    fn item(&mut self, index: usize, outcome: Outcome<'_>) {
        if self.error.is_some() {
            return;
        }
        match decode(&self.task, outcome) {
            Ok(v) => {
                if let Some(slot) = self.values.get_mut(index) {
                    *slot = Some(v);
                }
            }
            Err(e) => {
                self.error = Some(e);
                self.values = Vec::new();
            }
        }
    }

    fn finish(self: Box<Self>) {
        let MapSink {
            values,
            error,
            callbacks,
            cell,
            ..
        } = *self;
        let result = match error {
            Some(e) => Err(e),
            None => values
                .into_iter()
                .collect::<Option<Vec<R>>>()
                .ok_or(TaskError::Terminated),
        };
        callbacks.run(&result);
        cell.publish(result);
    }
}

/// Items of an `imap` waiting to be taken.
struct ImapQueue<R> {
    ordered: bool,
    /// Ordered: item `base + i` at `slots[i]`. Unordered: arrivals in order, all `Some`.
    slots: VecDeque<Option<Result<R, TaskError>>>,
    base: usize,
    taken: usize,
    total: usize,
}

struct ImapShared<R> {
    ec: EventCount,
    queue: Mutex<ImapQueue<R>>,
}

/// The iterator of [`Pool::imap`](super::Pool::imap) and
/// [`imap_unordered`](super::Pool::imap_unordered): each item's result, in the order of the
/// inputs (`imap`) or as they arrive (`imap_unordered`).
///
/// Each item is its own `Result`: an item that failed does not stop the others.
pub struct Imap<R> {
    shared: Arc<ImapShared<R>>,
    waiter: Waiter,
}

impl<R> Imap<R> {
    fn take_next(&self) -> Option<Option<Result<R, TaskError>>> {
        let mut q = lock(&self.shared.queue);
        if q.taken == q.total {
            return Some(None);
        }
        if q.ordered {
            match q.slots.front_mut() {
                Some(slot @ Some(_)) => {
                    let v = slot.take();
                    q.slots.pop_front();
                    q.base += 1;
                    q.taken += 1;
                    Some(v)
                }
                _ => None,
            }
        } else {
            let v = q.slots.pop_front()?;
            q.taken += 1;
            Some(v)
        }
    }

    /// The next item, waiting at most `timeout` (Python: `next(timeout)`): `Ok(None)` at the
    /// end.
    ///
    /// # Errors
    ///
    /// [`ImapTimeout`] if no item came in time.
    #[allow(clippy::type_complexity)]
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Result<R, TaskError>>, ImapTimeout> {
        self.waiter
            .wait(&self.shared.ec, Deadline::after(timeout), || {
                self.take_next()
            })
            .ok_or(ImapTimeout)
    }
}

impl<R> Iterator for Imap<R> {
    type Item = Result<R, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.waiter
            .wait(&self.shared.ec, Deadline::NEVER, || self.take_next())
            .flatten()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let q = lock(&self.shared.queue);
        let left = q.total - q.taken;
        (left, Some(left))
    }
}

impl<R> fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = lock(&self.shared.queue);
        f.debug_struct("Imap")
            .field("ordered", &q.ordered)
            .field("taken", &q.taken)
            .field("total", &q.total)
            .finish()
    }
}

/// [`Imap::next_timeout`] found no item in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapTimeout;

impl fmt::Display for ImapTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no imap result arrived in time")
    }
}

impl std::error::Error for ImapTimeout {}

/// The sink of an `imap`: hands each item to the iterator as it arrives.
pub(crate) struct ImapSink<R> {
    task: Arc<str>,
    shared: Arc<ImapShared<R>>,
    _r: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned + Send + 'static> ImapSink<R> {
    pub(crate) fn make(
        task: Arc<str>,
        len: usize,
        ordered: bool,
        waiter: Waiter,
    ) -> (Box<dyn Sink>, Imap<R>) {
        let shared = Arc::new(ImapShared {
            ec: EventCount::new(),
            queue: Mutex::new(ImapQueue {
                ordered,
                slots: if ordered {
                    (0..len).map(|_| None).collect()
                } else {
                    VecDeque::new()
                },
                base: 0,
                taken: 0,
                total: len,
            }),
        });
        let sink = ImapSink {
            task,
            shared: shared.clone(),
            _r: PhantomData,
        };
        (Box::new(sink), Imap { shared, waiter })
    }
}

impl<R: DeserializeOwned + Send + 'static> Sink for ImapSink<R> {
    fn item(&mut self, index: usize, outcome: Outcome<'_>) {
        let v = decode(&self.task, outcome);
        {
            let mut q = lock(&self.shared.queue);
            if q.ordered {
                let at = index.wrapping_sub(q.base);
                if let Some(slot) = q.slots.get_mut(at) {
                    *slot = Some(v);
                }
            } else {
                q.slots.push_back(Some(v));
            }
        }
        self.shared.ec.notify_all();
    }

    fn finish(self: Box<Self>) {
        self.shared.ec.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> Waiter {
        Waiter {
            pool: Weak::new(),
            strategy: WaitStrategy::default(),
        }
    }

    #[test]
    fn single_sink_publishes_after_callback() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let (mut sink, res) = SingleSink::<u64>::make(
            "sq".into(),
            Callbacks::new().callback(move |v| s2.lock().unwrap().push(*v)),
            ws(),
        );
        assert!(!res.ready());
        assert_eq!(res.successful(), None);
        let bytes = postcard::to_stdvec(&49u64).unwrap();
        sink.item(0, Outcome::Value(&bytes));
        sink.finish();
        assert!(res.ready());
        assert_eq!(res.successful(), Some(true));
        assert_eq!(*seen.lock().unwrap(), [49]);
        assert_eq!(res.get(), Ok(49));
    }

    #[test]
    fn map_sink_first_error_and_error_callback() {
        let seen = Arc::new(Mutex::new(None));
        let s2 = seen.clone();
        let (mut sink, res) = MapSink::<u8>::make(
            "f".into(),
            3,
            Callbacks::new()
                .callback(|_| panic!("not called"))
                .error_callback(move |e| *s2.lock().unwrap() = Some(e.clone())),
            ws(),
        );
        sink.item(2, Outcome::Value(&[7]));
        let err = TaskError::Failed {
            task: "f".into(),
            message: "boom".into(),
        };
        sink.item(0, Outcome::Error(err.clone()));
        sink.item(1, Outcome::Error(TaskError::Terminated));
        sink.finish();
        assert_eq!(res.successful(), Some(false));
        assert_eq!(seen.lock().unwrap().clone(), Some(err.clone()));
        match res.get_timeout(Duration::from_secs(1)) {
            Err(GetTimeoutError::Task(e)) => assert_eq!(e, err),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn map_sink_garbage_is_a_codec_error() {
        let (mut sink, res) = MapSink::<u64>::make("f".into(), 1, Callbacks::new(), ws());
        sink.item(0, Outcome::Value(&[0xff, 0xff]));
        sink.finish();
        assert!(matches!(res.get(), Err(TaskError::Codec { .. })));
    }

    #[test]
    fn get_timeout_hands_the_handle_back() {
        let (sink, res) = SingleSink::<u8>::make("t".into(), Callbacks::new(), ws());
        let res = match res.get_timeout(Duration::from_millis(5)) {
            Err(GetTimeoutError::Timeout(r)) => r,
            other => panic!("{other:?}"),
        };
        sink.finish(); // no item: the call was cut short
        assert_eq!(res.get(), Err(TaskError::Terminated));
    }

    #[test]
    fn imap_orders_or_not() {
        for ordered in [true, false] {
            let (mut sink, mut it) = ImapSink::<u8>::make("t".into(), 3, ordered, ws());
            sink.item(2, Outcome::Value(&[2]));
            assert_eq!(
                it.next_timeout(Duration::from_millis(1)).is_err(),
                ordered,
                "ordered imap must wait for item 0"
            );
            sink.item(0, Outcome::Value(&[0]));
            sink.item(1, Outcome::Error(TaskError::Terminated));
            sink.finish();
            let rest: Vec<_> = it.by_ref().collect();
            if ordered {
                assert_eq!(rest, [Ok(0), Err(TaskError::Terminated), Ok(2)]);
            } else {
                assert_eq!(rest, [Ok(0), Err(TaskError::Terminated)]);
            }
            assert_eq!(it.next(), None);
        }
    }
}
