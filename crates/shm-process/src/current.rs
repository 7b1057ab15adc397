//! [`current_process`] and [`cpu_count`].

use crate::roles::startup;

/// This process as Python's `multiprocessing.current_process()` describes it; made by
/// [`current_process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    name: String,
    pid: u32,
    parent_pid: u32,
    role: Option<String>,
    daemon: bool,
}

impl CurrentProcess {
    /// The name its parent gave it ([`ProcessBuilder::name`](crate::ProcessBuilder::name), by
    /// default `<role>-<n>`), or `"MainProcess"` in a top-level run, as in Python.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its parent's process id (Python's `os.getppid()`; `1` or a subreaper's once the parent
    /// died).
    pub fn parent_pid(&self) -> u32 {
        self.parent_pid
    }

    /// The role it was started in, or `None` in a top-level run.
    pub fn role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Whether its parent started it as a [daemon](crate::ProcessBuilder::daemon).
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }
}

/// This process: its name, pid, parent pid, role and daemon flag (Python's
/// `multiprocessing.current_process()` and `parent_process().pid`).
///
/// The name, role and daemon flag are those its parent passed; they stay readable after
/// [`Roles::run`](crate::Roles::run) removed them from the environment.
///
/// # Examples
///
/// ```
/// let me = shm_process::current_process();
/// assert_eq!(me.pid(), std::process::id());
/// if me.role().is_none() {
///     assert_eq!(me.name(), "MainProcess");
/// }
/// ```
pub fn current_process() -> CurrentProcess {
    let s = startup();
    CurrentProcess {
        name: match (&s.name, &s.role) {
            (Some(name), _) => name.clone(),
            (None, Some(role)) => role.clone(),
            (None, None) => "MainProcess".to_owned(),
        },
        pid: std::process::id(),
        parent_pid: shm_core::sys::parent_pid(),
        role: s.role.clone(),
        daemon: s.daemon,
    }
}

/// The number of CPUs this process may run on: the default number of workers for a pool.
///
/// Unlike Python's `os.cpu_count()` (every CPU of the machine), this honours the CPU affinity
/// mask and cgroup quota, as Python 3.13's `os.process_cpu_count()` does, so a pool does not
/// start more workers than can run at once. At least 1.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn top_level_process_is_main_process() {
        let me = current_process();
        assert_eq!(me.name(), "MainProcess");
        assert_eq!(me.role(), None);
        assert!(!me.is_daemon());
        assert_eq!(me.pid(), std::process::id());
        assert_ne!(me.parent_pid(), me.pid());
        assert!(cpu_count() >= 1);
    }
}
