//! Starting and watching worker processes: the pool's only use of the process helper.

use crate::Process;
use std::io;
use std::path::Path;

/// The role a pool worker is started in.
pub const WORKER_ROLE: &str = "shm-process.pool-worker";

/// A running (or ended) worker process.
#[derive(Debug)]
pub(crate) struct Worker {
    process: Process,
}

impl Worker {
    /// Starts a worker with its encoded configuration. Daemon: it dies with the thread that
    /// starts it (the pool's result thread), however the parent ends.
    pub(crate) fn start(program: Option<&Path>, config: String) -> io::Result<Worker> {
        let mut b = Process::builder(WORKER_ROLE).arg(config).daemon(true);
        if let Some(p) = program {
            b = b.program(p);
        }
        Ok(Worker {
            process: b.start()?,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// How it ended, if it has (reaping it).
    pub(crate) fn try_join(&mut self) -> Option<String> {
        match self.process.try_join() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    /// Kills it (SIGKILL) and reaps it.
    pub(crate) fn kill_and_reap(&mut self) -> String {
        let _ = self.process.kill();
        match self.process.join() {
            Ok(status) => status.to_string(),
            Err(e) => format!("cannot be waited for: {e}"),
        }
    }
}

/// Whether this process was started as a pool worker.
pub(crate) fn is_worker() -> bool {
    crate::current_role().as_deref() == Some(WORKER_ROLE)
}

/// The arguments the worker was started with.
pub(crate) fn worker_args() -> Vec<String> {
    crate::role_args()
}
