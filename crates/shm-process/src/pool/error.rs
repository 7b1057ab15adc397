//! The pool's errors, one per kind of operation.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Why one task (one item of a map) produced no value.
///
/// Returned by [`AsyncResult::get`](super::AsyncResult::get), passed to error callbacks and
/// yielded by the `imap` iterators. Python re-raises the task's exception; here the error
/// carries the task's name and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task's function returned `Err`.
    Failed {
        /// The registered name of the function.
        task: Arc<str>,
        /// The error's `Display` text.
        message: String,
    },
    /// The task's function panicked; the worker survived.
    Panicked {
        /// The registered name of the function.
        task: Arc<str>,
        /// The panic message and where it happened.
        message: String,
    },
    /// The worker running the task died (killed, aborted, crashed, or exited) before the task
    /// finished. Only the task it held fails: the pool starts a replacement and every other
    /// task runs on.
    WorkerDied {
        /// The registered name of the function.
        task: Arc<str>,
        /// The index of the item in its call (0 for `apply`).
        item: usize,
        /// The worker's pid.
        pid: u32,
        /// How it ended (`killed by signal 9 (SIGKILL)`, `exit code 3`, ...).
        how: String,
    },
    /// The pool was terminated before the task finished.
    Terminated,
    /// The pool cannot run tasks: a worker's initializer failed, its task registry differs
    /// from the parent's, or workers could not be started.
    PoolBroken {
        /// What went wrong.
        reason: String,
    },
    /// The arguments did not decode in the worker or the result did not decode in the parent
    /// (the registries of parent and worker disagree about a type).
    Codec {
        /// The registered name of the function.
        task: Arc<str>,
        /// What did not decode.
        message: String,
    },
    /// The encoded result does not fit the pool's largest message
    /// ([`PoolBuilder::max_message`](super::PoolBuilder::max_message)).
    ResultTooLarge {
        /// The registered name of the function.
        task: Arc<str>,
        /// What the worker reported.
        message: String,
    },
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed { task, message } => write!(f, "task `{task}` failed: {message}"),
            TaskError::Panicked { task, message } => {
                write!(f, "task `{task}` panicked: {message}")
            }
            TaskError::WorkerDied {
                task,
                item,
                pid,
                how,
            } => write!(
                f,
                "the worker (pid {pid}) running task `{task}` (item {item}) died: {how}"
            ),
            TaskError::Terminated => f.write_str("the pool was terminated before the task ran"),
            TaskError::PoolBroken { reason } => write!(f, "the pool cannot run tasks: {reason}"),
            TaskError::Codec { task, message } => write!(f, "task `{task}`: {message}"),
            TaskError::ResultTooLarge { task, message } => {
                write!(f, "task `{task}`: result too large: {message}")
            }
        }
    }
}

impl Error for TaskError {}

/// Why a call could not be submitted to the pool.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubmitError {
    /// The pool was closed or terminated: it takes no new work (Python: `ValueError: Pool not
    /// running`).
    NotRunning,
    /// The task handle does not belong to this pool's registry.
    UnknownTask {
        /// The handle's index.
        index: u32,
    },
    /// An argument could not be encoded.
    Encode {
        /// The item's index in the call.
        item: usize,
        /// The encoder's error.
        source: postcard::Error,
    },
    /// An encoded argument does not fit the pool's largest message.
    TooLarge {
        /// The item's index in the call.
        item: usize,
        /// Its encoded length.
        len: usize,
        /// The most an argument may take.
        max: usize,
    },
    /// A chunk size of zero was given.
    ZeroChunksize,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::NotRunning => f.write_str("the pool is closed or terminated"),
            SubmitError::UnknownTask { index } => write!(
                f,
                "task {index} is not registered in this pool's registry (a handle from another registry?)"
            ),
            SubmitError::Encode { item, .. } => {
                write!(f, "cannot encode the arguments of item {item}")
            }
            SubmitError::TooLarge { item, len, max } => write!(
                f,
                "the arguments of item {item} take {len} bytes encoded, more than the pool's {max}"
            ),
            SubmitError::ZeroChunksize => f.write_str("a chunk size must be at least 1"),
        }
    }
}

impl Error for SubmitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SubmitError::Encode { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a blocking call (`apply`, `map`, `starmap`) gave no value: it could not be submitted,
/// or the task failed.
#[derive(Debug)]
pub enum CallError {
    /// The call was not submitted.
    Submit(SubmitError),
    /// The task (or, for a map, the first item that failed) failed.
    Task(TaskError),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Submit(e) => write!(f, "{e}"),
            CallError::Task(e) => write!(f, "{e}"),
        }
    }
}

impl Error for CallError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CallError::Submit(e) => Some(e),
            CallError::Task(e) => Some(e),
        }
    }
}

impl From<SubmitError> for CallError {
    fn from(e: SubmitError) -> Self {
        CallError::Submit(e)
    }
}

impl From<TaskError> for CallError {
    fn from(e: TaskError) -> Self {
        CallError::Task(e)
    }
}

/// Why [`AsyncResult::get_timeout`](super::AsyncResult::get_timeout) gave no value.
pub enum GetTimeoutError<T> {
    /// Not ready within the timeout; the handle comes back, to wait again.
    Timeout(super::AsyncResult<T>),
    /// The task failed.
    Task(TaskError),
}

impl<T> fmt::Debug for GetTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            GetTimeoutError::Task(e) => f.debug_tuple("Task").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for GetTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetTimeoutError::Timeout(_) => f.write_str("the result was not ready in time"),
            GetTimeoutError::Task(e) => write!(f, "{e}"),
        }
    }
}

impl<T> Error for GetTimeoutError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            GetTimeoutError::Timeout(_) => None,
            GetTimeoutError::Task(e) => Some(e),
        }
    }
}

/// Why a pool could not be created.
#[derive(Debug)]
#[non_exhaustive]
pub enum CreateError {
    /// A parameter is out of range.
    Invalid {
        /// Which and why.
        reason: String,
    },
    /// A segment or queue of the pool could not be made.
    Setup {
        /// What was being made.
        what: String,
        /// The underlying error.
        source: Box<dyn Error + Send + Sync>,
    },
    /// A worker process could not be started.
    Spawn(io::Error),
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::Invalid { reason } => write!(f, "invalid pool: {reason}"),
            CreateError::Setup { what, source } => write!(f, "cannot create {what}: {source}"),
            CreateError::Spawn(e) => write!(f, "cannot start a pool worker: {e}"),
        }
    }
}

impl Error for CreateError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CreateError::Invalid { .. } => None,
            CreateError::Setup { source, .. } => Some(&**source),
            CreateError::Spawn(e) => Some(e),
        }
    }
}

/// Why [`Pool::join`](super::Pool::join) refused: the pool is still running (Python:
/// `ValueError`); call [`close`](super::Pool::close) or [`terminate`](super::Pool::terminate)
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinError;

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("join of a running pool: call close() or terminate() first")
    }
}

impl Error for JoinError {}
