//! A pool of worker processes: Python's `multiprocessing.Pool`, over shared-memory queues.
//!
//! - [`Registry`]: the functions the workers can run, registered by name; registration hands
//!   back a typed [`Task<A, R>`] handle, so a call with the wrong argument or result type does
//!   not compile.
//! - [`Pool`]: `apply`, `apply_async`, `map`, `map_async`, `starmap`, `starmap_async`, `imap`,
//!   `imap_unordered`, `close`, `terminate`, `join`; made by [`Pool::builder`] with the number
//!   of workers, an initializer and `maxtasksperchild`.
//! - [`AsyncResult`] (`get`, `get_timeout`, `wait`, `ready`, `successful`), [`Imap`],
//!   [`Callbacks`] (`callback`, `error_callback`), and the errors: [`TaskError`] per task,
//!   [`SubmitError`], [`CallError`], [`CreateError`].
//!
//! # How it works
//!
//! A worker is the same binary started again in the role [`WORKER_ROLE`]; its `main` calls
//! [`Registry::serve_if_worker`] after building the registry, which serves tasks and exits in a
//! worker and returns at once anywhere else. Each worker has an SPSC byte queue from the parent
//! (its inbox) and one back (its outbox), and a control segment holds the eventcount that
//! workers notify. The caller's thread encodes the arguments and puts them straight into an
//! inbox when one has room. A caller waiting for its result waits on that eventcount and takes
//! results out of the outboxes itself, so an `apply` goes caller → worker → caller with no
//! thread in between; the pool's one result thread drains the outboxes when nobody waits,
//! refills the inboxes from the calls still queued, runs the callbacks, and watches and
//! replaces the workers. No feeder thread, no pickling, no pipe. Tasks travel several to an
//! inbox message (one per task when they come one at a time, up to 256 in a large map);
//! results come back one message per task, and a worker wakes the parent once per inbox
//! message or 16 results.
//!
//! **Waiting** follows the pool's [`WaitStrategy`] (default: spin briefly, then sleep), with
//! one refinement: a waiter whose spins keep ending in a sleep anyway stops spinning for a
//! while (on a machine whose cores are busy, a spinning waiter only keeps the peer it waits
//! for off the core; measured here under load, an `apply` round trip took ~80 µs spinning and
//! ~6 µs sleeping at once).
//!
//! **A worker that dies mid-task** (killed, aborted, crashed) fails exactly the task it held,
//! with [`TaskError::WorkerDied`] naming the task, the item, the worker's pid and how it ended;
//! a replacement starts and every other task runs. (Python's pool never completes such a call:
//! CPython bpo-22393.) A task is a chunk of items when a map has a chunk size above 1, as in
//! Python; then every item of that chunk still unanswered fails.
//!
//! A panic or an `Err` in a task is that task's error ([`TaskError::Panicked`],
//! [`TaskError::Failed`]); the worker goes on.
//!
//! # Examples
//!
//! The whole program (the same binary is the parent and the workers):
//!
//! ```no_run
//! use shm_process::pool::{Callbacks, Pool, Registry, Task};
//!
//! struct Tasks {
//!     square: Task<u64, u64>,
//!     add: Task<(i64, i64), i64>,
//! }
//!
//! fn tasks(registry: &mut Registry) -> Tasks {
//!     Tasks {
//!         square: registry.register("square", |x: u64| x * x),
//!         add: registry.register_star("add", |a: i64, b: i64| a + b),
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut registry = Registry::new();
//!     let t = tasks(&mut registry);
//!     registry.serve_if_worker(); // a worker serves here and never returns
//!
//!     let pool = Pool::builder(&registry).processes(4).create()?;
//!     assert_eq!(pool.apply(&t.square, 7)?, 49);
//!     assert_eq!(pool.map(&t.square, 0..5)?, [0, 1, 4, 9, 16]);
//!     assert_eq!(pool.starmap(&t.add, [(1, 2), (3, 4)])?, [3, 7]);
//!     let r = pool.apply_async_with(&t.square, 3, Callbacks::new().callback(|v| println!("{v}")))?;
//!     assert_eq!(r.get()?, 9);
//!     pool.close();
//!     pool.join()?;
//!     Ok(())
//! }
//! ```

mod error;
mod handler;
mod registry;
mod result;
mod spawn;
mod spin;
mod state;
mod wire;
mod worker;

pub use error::{CallError, CreateError, GetTimeoutError, JoinError, SubmitError, TaskError};
pub use registry::{Registry, StarFn, Task};
pub use result::{AsyncResult, Callbacks, Imap, ImapTimeout};
pub use spawn::WORKER_ROLE;

use handler::{Shared, Spawner};
use result::{ImapSink, MapSink, SingleSink, Sink, Waiter};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shm_core::{SegmentName, WaitStrategy};
use shm_queue::bytes::{ByteQueue, Flavor};
use state::{Job, Outbox, Phase, Slot, State};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

/// Default largest message between the parent and a worker: 64 KiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;
/// Most workers a pool may have.
pub const MAX_PROCESSES: usize = 4096;

impl Registry {
    /// In a process started as a pool worker, serves tasks until the pool lets it go, then
    /// exits the process; anywhere else, returns at once.
    ///
    /// Call it early in `main`, after building the registry and **before**
    /// [`Roles::run`](crate::Roles::run) (which does not know the worker role), or register
    /// [`serve`](Self::serve) as the role [`WORKER_ROLE`] instead. A worker whose registry
    /// differs from its parent's reports it, and the pool fails its calls with
    /// [`TaskError::PoolBroken`].
    pub fn serve_if_worker(&self) {
        if !spawn::is_worker() {
            return;
        }
        // Keep the role from leaking into processes a task starts.
        std::env::remove_var(crate::ROLE_ENV);
        let code = match self.serve(&spawn::worker_args()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("shm-process pool worker {}: {e}", std::process::id());
                1
            }
        };
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        std::process::exit(code);
    }

    /// The worker's main, for a program that dispatches its roles itself: run it for the role
    /// [`WORKER_ROLE`] with the role's arguments. Returns when the pool lets the worker go.
    ///
    /// # Errors
    ///
    /// [`ServeError`] if the worker cannot join its pool (bad arguments, segments gone, a
    /// registry that differs from the parent's, a failed initializer).
    pub fn serve(&self, args: &[String]) -> Result<(), ServeError> {
        worker::run(self, args).map_err(ServeError)
    }
}

/// Why a pool worker could not serve its pool; see [`Registry::serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeError(String);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// Configures a [`Pool`]; made by [`Pool::builder`].
#[must_use = "a PoolBuilder does nothing until `create` is called"]
pub struct PoolBuilder<'r> {
    registry: &'r Registry,
    processes: Option<usize>,
    init: Option<(u32, u64, Result<Vec<u8>, postcard::Error>)>,
    maxtasks: Option<u64>,
    strategy: WaitStrategy,
    max_message: usize,
    program: Option<PathBuf>,
    prefix: String,
}

impl fmt::Debug for PoolBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("initializer", &self.init.as_ref().map(|i| i.0))
            .field("maxtasksperchild", &self.maxtasks)
            .field("wait_strategy", &self.strategy)
            .field("max_message", &self.max_message)
            .field("program", &self.program)
            .field("name_prefix", &self.prefix)
            .finish()
    }
}

impl<'r> PoolBuilder<'r> {
    /// Number of worker processes (Python: `processes`; default: the CPUs this process may
    /// run on, as [`std::thread::available_parallelism`] says).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A registered function each worker runs once with `args` before its first task (Python:
    /// `initializer`, `initargs`). If it fails or panics, the pool is broken: every call fails
    /// with [`TaskError::PoolBroken`] naming the reason (Python starts new workers forever).
    ///
    /// The arguments travel on each worker's command line: keep their encoding well under
    /// 64 KiB (pass a segment's name for bulk data).
    pub fn initializer<A: Serialize, R>(mut self, task: &Task<A, R>, args: A) -> Self {
        self.init = Some((task.index, task.signature, postcard::to_stdvec(&args)));
        self
    }

    /// Tasks a worker runs before it is replaced by a fresh one (Python: `maxtasksperchild`;
    /// default: no limit). A chunk of a map counts as one task, as in Python.
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.maxtasks = Some(n);
        self
    }

    /// How the workers, the result thread and the waits on results wait (default:
    /// [`WaitStrategy::default`], spin briefly then sleep).
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Largest message between parent and worker (default [`DEFAULT_MAX_MESSAGE`]): one
    /// encoded argument, or one encoded result, must fit in it.
    pub fn max_message(mut self, bytes: usize) -> Self {
        self.max_message = bytes;
        self
    }

    /// Runs the workers from `path` instead of the current executable. That program must
    /// build the same registry and call [`Registry::serve_if_worker`] (a test helper binary,
    /// say).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// The start of the pool's segment names (at most 4 characters of it are kept; default
    /// `pool`).
    pub fn name_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.chars().take(4).collect();
        self
    }

    /// Creates the segments and starts the workers.
    ///
    /// # Errors
    ///
    /// [`CreateError::Invalid`] for zero or too many processes, a zero task limit, a bad
    /// prefix, an initializer that is not in the registry or whose arguments do not encode;
    /// [`CreateError::Setup`] if a segment cannot be made; [`CreateError::Spawn`] if a worker
    /// cannot be started.
    pub fn create(self) -> Result<Pool, CreateError> {
        let invalid = |reason: String| CreateError::Invalid { reason };
        let processes = self.processes.unwrap_or_else(default_processes);
        if processes == 0 || processes > MAX_PROCESSES {
            return Err(invalid(format!(
                "{processes} processes; between 1 and {MAX_PROCESSES} are allowed"
            )));
        }
        if self.maxtasks == Some(0) {
            return Err(invalid("maxtasksperchild must be at least 1".into()));
        }
        let min_message = wire::TASK_MSG_HEAD + wire::TASK_HEAD + wire::ITEM_HEAD + 64;
        if self.max_message < min_message {
            return Err(invalid(format!(
                "max_message {} is below the least useful size, {min_message}",
                self.max_message
            )));
        }
        let init = match self.init {
            None => None,
            Some((index, signature, args)) => {
                if self
                    .registry
                    .entry(index)
                    .is_none_or(|e| e.signature != signature)
                {
                    return Err(invalid(format!(
                        "the initializer (task {index}) is not in this registry"
                    )));
                }
                let args = args.map_err(|e| {
                    invalid(format!("cannot encode the initializer's arguments: {e}"))
                })?;
                Some((index, signature, args))
            }
        };
        let base = SegmentName::unique_with_prefix(&self.prefix)
            .map_err(|e| invalid(format!("bad name prefix {:?}: {e}", self.prefix)))?;
        let base = base.as_str().to_owned();
        let setup = |what: String| {
            move |e: Box<dyn std::error::Error + Send + Sync>| CreateError::Setup {
                what,
                source: e,
            }
        };
        let ctl_name = wire::control_name(&base).map_err(invalid)?;
        let ctl = wire::ControlBlock::create(&ctl_name, self.registry.fingerprint())
            .map_err(|e| setup(format!("the control segment {ctl_name}"))(e.into()))?;

        let mut slots = Vec::with_capacity(processes);
        let mut outboxes = Vec::with_capacity(processes);
        for i in 0..processes as u32 {
            let make = |dir: char, cap: u64| -> Result<ByteQueue, CreateError> {
                let name = wire::queue_name(&base, dir, i).map_err(invalid)?;
                ByteQueue::builder(&name)
                    .flavor(Flavor::Spsc)
                    .capacity(cap)
                    .max_message(self.max_message)
                    .create()
                    .map_err(|e| setup(format!("the queue {name}"))(e.into()))
            };
            let inbox = make('i', state::INBOX_CAPACITY)?;
            let outbox = make('o', state::OUTBOX_CAPACITY)?;
            let role = |e: shm_queue::RoleError| setup("a queue role".into())(e.into());
            let mut tx = inbox.producer().map_err(role)?;
            tx.set_wait_strategy(self.strategy);
            let mut rx = outbox.consumer().map_err(role)?;
            rx.set_wait_strategy(self.strategy);
            slots.push(Slot::new(inbox, tx));
            outboxes.push(Outbox { queue: outbox, rx });
        }

        let queues: Vec<ByteQueue> = outboxes.iter().map(|o| o.queue.clone()).collect();
        let open = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(
                slots,
                outboxes,
                self.max_message,
                self.maxtasks,
                open.clone(),
            )),
            ctl,
            wake: AtomicBool::new(false),
            collectors: AtomicUsize::new(0),
            local: shm_core::EventCount::new(),
            open,
            spin: spin::SpinGovernor::default(),
        });
        let spawner = Spawner {
            program: self.program,
            base,
            maxtasks: self.maxtasks.unwrap_or(0),
            init,
            strategy: self.strategy,
        };
        let (started_tx, started_rx) = mpsc::channel();
        let thread_shared = shared.clone();
        let handler = std::thread::Builder::new()
            .name("shm-pool-results".into())
            .spawn(move || handler::run(thread_shared, queues, spawner, started_tx))
            .map_err(CreateError::Spawn)?;
        match started_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = handler.join();
                return Err(CreateError::Spawn(e));
            }
            Err(_) => {
                let _ = handler.join();
                return Err(CreateError::Spawn(std::io::Error::other(
                    "the pool's result thread ended while starting the workers",
                )));
            }
        }
        let max_item = self.max_message - wire::TASK_MSG_HEAD - wire::TASK_HEAD - wire::ITEM_HEAD;
        Ok(Pool {
            shared,
            handler: Mutex::new(Some(handler)),
            catalog: self.registry.catalog(),
            processes,
            strategy: self.strategy,
            max_item,
        })
    }
}

fn default_processes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A pool of worker processes: Python's `multiprocessing.Pool`. See the [module docs](self).
///
/// `Pool` is `Sync`: calls may come from several threads at once. Dropping it terminates it
/// (as leaving Python's `with Pool() as p:` block does): unfinished calls fail with
/// [`TaskError::Terminated`]; call [`close`](Self::close) and [`join`](Self::join) first to
/// let them finish.
pub struct Pool {
    shared: Arc<Shared>,
    handler: Mutex<Option<JoinHandle<()>>>,
    catalog: Arc<[(Arc<str>, u64)]>,
    processes: usize,
    strategy: WaitStrategy,
    max_item: usize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("control", self.shared.ctl.name())
            .finish()
    }
}

impl Pool {
    /// A builder for a pool whose workers run the functions of `registry`.
    pub fn builder(registry: &Registry) -> PoolBuilder<'_> {
        PoolBuilder {
            registry,
            processes: None,
            init: None,
            maxtasks: None,
            strategy: WaitStrategy::default(),
            max_message: DEFAULT_MAX_MESSAGE,
            program: None,
            prefix: "pool".into(),
        }
    }

    fn waiter(&self) -> Waiter {
        Waiter {
            pool: Arc::downgrade(&self.shared),
            strategy: self.strategy,
        }
    }

    /// The number of workers.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// The pids of the current workers (0 for a slot whose worker is being replaced).
    pub fn pids(&self) -> Vec<u32> {
        self.shared.lock().slots.iter().map(|s| s.pid).collect()
    }

    /// The name of the task `task`, checked against this pool's registry.
    fn task_name<A, R>(&self, task: &Task<A, R>) -> Result<Arc<str>, SubmitError> {
        match self.catalog.get(task.index as usize) {
            Some((name, sig)) if *sig == task.signature => Ok(name.clone()),
            _ => Err(SubmitError::UnknownTask { index: task.index }),
        }
    }

    /// Encodes the items of a call.
    fn encode<A: Serialize>(
        &self,
        items: impl IntoIterator<Item = A>,
    ) -> Result<(Vec<u8>, Vec<u32>), SubmitError> {
        let items = items.into_iter();
        let mut args = Vec::new();
        let mut ends = Vec::with_capacity(items.size_hint().0);
        for (item, a) in items.enumerate() {
            let before = args.len();
            registry::encode_into(&a, &mut args)
                .map_err(|source| SubmitError::Encode { item, source })?;
            let len = args.len() - before;
            if len > self.max_item {
                return Err(SubmitError::TooLarge {
                    item,
                    len,
                    max: self.max_item,
                });
            }
            let end = u32::try_from(args.len()).map_err(|_| SubmitError::TooLarge {
                item,
                len: args.len(),
                max: u32::MAX as usize,
            })?;
            ends.push(end);
        }
        Ok((args, ends))
    }

    /// Hands a call to the pool. A caller that does not wait for it at once (`will_wait`
    /// false) wakes the result thread if no waiter is collecting results; one that waits
    /// collects them itself.
    fn submit(&self, job: Job, will_wait: bool) -> Result<(), SubmitError> {
        let mut st = self.shared.lock();
        if st.phase != Phase::Running {
            return Err(SubmitError::NotRunning);
        }
        st.submit(job);
        if !will_wait && self.shared.collectors.load(Ordering::SeqCst) == 0 {
            self.shared.local.notify_all();
        }
        if st.broken.is_some() {
            // No result thread is left to finish these: finish them here.
            let done: Vec<Box<dyn Sink>> = st.completed.drain(..).collect();
            drop(st);
            done.into_iter().for_each(|s| s.finish());
        }
        Ok(())
    }

    fn chunksize(&self, len: usize, chunksize: Option<usize>) -> Result<u32, SubmitError> {
        match chunksize {
            Some(0) => Err(SubmitError::ZeroChunksize),
            Some(c) => Ok(u32::try_from(c).unwrap_or(u32::MAX)),
            // Python: ceil(len / (4 * processes)).
            None => Ok(u32::try_from(len.div_ceil(4 * self.processes).max(1)).unwrap_or(u32::MAX)),
        }
    }

    /// Runs `task(args)` in a worker and waits for its value (Python: `apply`).
    ///
    /// # Errors
    ///
    /// [`CallError::Submit`] if the call cannot be made, [`CallError::Task`] if the task fails.
    pub fn apply<A, R>(&self, task: &Task<A, R>, args: A) -> Result<R, CallError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        Ok(self.apply_impl(task, args, Callbacks::new(), true)?.get()?)
    }

    /// Starts `task(args)` in a worker (Python: `apply_async`).
    ///
    /// # Errors
    ///
    /// [`SubmitError`] if the call cannot be made.
    pub fn apply_async<A, R>(
        &self,
        task: &Task<A, R>,
        args: A,
    ) -> Result<AsyncResult<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.apply_async_with(task, args, Callbacks::new())
    }

    /// [`apply_async`](Self::apply_async) with a `callback` and `error_callback`, run in the
    /// pool's result thread.
    ///
    /// # Errors
    ///
    /// [`SubmitError`] if the call cannot be made (the callbacks are not called then).
    pub fn apply_async_with<A, R>(
        &self,
        task: &Task<A, R>,
        args: A,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.apply_impl(task, args, callbacks, false)
    }

    fn apply_impl<A, R>(
        &self,
        task: &Task<A, R>,
        args: A,
        callbacks: Callbacks<R>,
        will_wait: bool,
    ) -> Result<AsyncResult<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let name = self.task_name(task)?;
        let (args, ends) = self.encode(std::iter::once(args))?;
        let (sink, result) = SingleSink::make(name.clone(), callbacks, self.waiter());
        self.submit(Job::new(task.index, name, args, ends, 1, sink), will_wait)?;
        Ok(result)
    }

    /// Runs `task` on every item and waits for the values, in order (Python: `map`), with the
    /// default chunk size, `ceil(len / (4 * processes))`.
    ///
    /// # Errors
    ///
    /// [`CallError::Submit`], or [`CallError::Task`] with the first failure to arrive (the
    /// other items still run).
    pub fn map<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, CallError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        Ok(self
            .map_impl(task, items, None, Callbacks::new(), true)?
            .get()?)
    }

    /// [`map`](Self::map) with a chunk size: items go to the workers `chunksize` at a time.
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map); [`SubmitError::ZeroChunksize`] for 0.
    pub fn map_chunked<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, CallError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        Ok(self
            .map_impl(task, items, Some(chunksize), Callbacks::new(), true)?
            .get()?)
    }

    /// Starts a [`map`](Self::map) (Python: `map_async`). The items are taken and encoded
    /// now.
    ///
    /// # Errors
    ///
    /// [`SubmitError`] if the call cannot be made.
    pub fn map_async<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_async_with(task, items, None, Callbacks::new())
    }

    /// [`map_async`](Self::map_async) with a chunk size (`None`: the default) and callbacks:
    /// `callback` gets every value, `error_callback` the first failure (Python:
    /// `map_async(func, iterable, chunksize, callback, error_callback)`).
    ///
    /// # Errors
    ///
    /// [`SubmitError`] if the call cannot be made.
    pub fn map_async_with<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_impl(task, items, chunksize, callbacks, false)
    }

    fn map_impl<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
        will_wait: bool,
    ) -> Result<AsyncResult<Vec<R>>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let name = self.task_name(task)?;
        let (args, ends) = self.encode(items)?;
        let chunksize = self.chunksize(ends.len(), chunksize)?;
        if ends.is_empty() {
            if self.shared.lock().phase != Phase::Running {
                return Err(SubmitError::NotRunning);
            }
            return Ok(MapSink::empty(self.waiter()));
        }
        let (sink, result) = MapSink::make(name.clone(), ends.len(), callbacks, self.waiter());
        self.submit(
            Job::new(task.index, name, args, ends, chunksize, sink),
            will_wait,
        )?;
        Ok(result)
    }

    /// Python's `starmap`: each item is the tuple of arguments of a task registered with
    /// [`Registry::register_star`] (or any task taking a tuple). The same as [`map`](Self::map).
    ///
    /// # Errors
    ///
    /// As [`map`](Self::map).
    pub fn starmap<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, CallError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.map(task, items)
    }

    /// Python's `starmap_async`: [`map_async_with`](Self::map_async_with) over argument
    /// tuples.
    ///
    /// # Errors
    ///
    /// As [`map_async`](Self::map_async).
    pub fn starmap_async<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.map_async_with(task, items, chunksize, callbacks)
    }

    /// Runs `task` on every item, yielding each result in the order of the items as it
    /// becomes available (Python: `imap`; chunk size 1 unless given). The items are taken and
    /// encoded now (Python's `imap` reads its iterable lazily, in a thread).
    ///
    /// # Errors
    ///
    /// [`SubmitError`] if the call cannot be made.
    pub fn imap<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
    ) -> Result<Imap<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.imap_impl(task, items, chunksize, true)
    }

    /// As [`imap`](Self::imap), yielding results as they arrive (Python: `imap_unordered`).
    ///
    /// # Errors
    ///
    /// [`SubmitError`] if the call cannot be made.
    pub fn imap_unordered<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
    ) -> Result<Imap<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        self.imap_impl(task, items, chunksize, false)
    }

    fn imap_impl<A, R>(
        &self,
        task: &Task<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        ordered: bool,
    ) -> Result<Imap<R>, SubmitError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let name = self.task_name(task)?;
        let (args, ends) = self.encode(items)?;
        let chunksize = self.chunksize(ends.len(), Some(chunksize.unwrap_or(1)))?;
        let (sink, iter) = ImapSink::make(name.clone(), ends.len(), ordered, self.waiter());
        if ends.is_empty() {
            if self.shared.lock().phase != Phase::Running {
                return Err(SubmitError::NotRunning);
            }
            sink.finish();
            return Ok(iter);
        }
        self.submit(
            Job::new(task.index, name, args, ends, chunksize, sink),
            false,
        )?;
        Ok(iter)
    }

    /// Takes no more calls; the workers finish the queued ones, then leave (Python: `close`).
    pub fn close(&self) {
        let mut st = self.shared.lock();
        if st.phase == Phase::Running {
            st.phase = Phase::Closing;
        }
        drop(st);
        self.shared.wake();
    }

    /// Stops the workers now; unfinished calls fail with [`TaskError::Terminated`] (Python:
    /// `terminate`).
    pub fn terminate(&self) {
        self.shared.lock().phase = Phase::Terminating;
        self.shared.wake();
    }

    /// Waits until every worker has left, after [`close`](Self::close) (the queued calls are
    /// done then) or [`terminate`](Self::terminate) (Python: `join`).
    ///
    /// # Errors
    ///
    /// [`JoinError`] if the pool is still running.
    pub fn join(&self) -> Result<(), JoinError> {
        if self.shared.lock().phase == Phase::Running {
            return Err(JoinError);
        }
        let handle = self
            .handler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            if h.thread().id() == std::thread::current().id() {
                // Called from a callback (the last handle of the pool dropped there): the
                // result thread ends by itself once this call returns.
                return Ok(());
            }
            let _ = h.join();
        }
        Ok(())
    }
}

// A pool is shared between threads by reference; its results move between threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Pool>();
    send::<AsyncResult<Vec<String>>>();
    send::<Imap<String>>();
};

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.join();
    }
}
