//! Linux: POSIX shared memory, shared futexes, `kill` and `/proc` for liveness.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::{Exists, FileId, FileStat, FileType, FutexWait, OpenFailure, ProcStat, UsersScan};

/// Where `shm_open` names live on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl FileType {
    pub(super) fn of(ft: std::fs::FileType) -> FileType {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_file() {
            FileType::Regular
        } else if ft.is_fifo() {
            FileType::Fifo
        } else if ft.is_dir() {
            FileType::Directory
        } else if ft.is_symlink() {
            FileType::Symlink
        } else if ft.is_socket() {
            FileType::Socket
        } else if ft.is_char_device() {
            FileType::CharDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else {
            FileType::Other
        }
    }
}

impl FileStat {
    pub(super) fn of(m: &std::fs::Metadata) -> FileStat {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            len: m.len(),
            id: FileId {
                dev: m.dev(),
                ino: m.ino(),
            },
            file_type: FileType::of(m.file_type()),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            modified: m.modified().ok(),
        }
    }
}

/// A descriptor of a file in the shm namespace, known to be a regular file.
#[derive(Debug)]
pub(crate) struct ShmFile {
    file: File,
}

fn shm_path(bare: &str) -> std::path::PathBuf {
    std::path::Path::new(SHM_DIR).join(bare)
}

/// `shm_open(name, O_CREAT|O_EXCL|O_RDWR|O_NOFOLLOW, mode)`, then `fchmod(mode)` so the umask
/// does not narrow the mode the caller asked for.
pub(crate) fn shm_create_exclusive(name: &CStr, mode: u32) -> io::Result<ShmFile> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe {
        libc::shm_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode as libc::mode_t,
        )
    })?;
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: fchmod on a file descriptor we own; no memory is passed.
    if let Err(e) = cvt(unsafe { libc::fchmod(fd, mode as libc::mode_t) }) {
        // Do not leave an empty file behind under the name we just took.
        let _ = shm_unlink(name);
        return Err(e);
    }
    Ok(ShmFile { file })
}

/// Opens an existing name without ever blocking: `O_NONBLOCK` (a FIFO would otherwise block
/// the open until a writer appears) and `O_NOFOLLOW`, then `fstat` and refuses anything that
/// is not a regular file.
pub(crate) fn shm_open(name: &CStr, writable: bool) -> Result<ShmFile, OpenFailure> {
    let access = if writable {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    let flags = access | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::shm_open(name.as_ptr(), flags, 0) };
    let fd = match cvt(ret) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(OpenFailure::NotRegular(FileType::Symlink))
        }
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
            return Err(OpenFailure::NotRegular(FileType::Directory))
        }
        Err(e) => return Err(OpenFailure::Io(e)),
    };
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let file = ShmFile {
        file: File::from(owned),
    };
    match file.stat() {
        Ok(st) if st.file_type == FileType::Regular => Ok(file),
        Ok(st) => Err(OpenFailure::NotRegular(st.file_type)),
        Err(e) => Err(OpenFailure::Io(e)),
    }
}

/// `lstat` of a name in the shm namespace: never opens it.
pub(crate) fn shm_lstat(bare: &str) -> io::Result<FileStat> {
    std::fs::symlink_metadata(shm_path(bare)).map(|m| FileStat::of(&m))
}

impl ShmFile {
    /// `fstat`.
    pub(crate) fn stat(&self) -> io::Result<FileStat> {
        self.file.metadata().map(|m| FileStat::of(&m))
    }

    /// `pread` of exactly `buf.len()` bytes at `offset` (`UnexpectedEof` if the file is
    /// shorter). A copy, so a file truncated under us gives an error, not `SIGBUS`.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    /// `ftruncate`.
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    /// Maps the first `len` bytes shared (read-write if the file was opened so).
    pub(crate) fn map(&self, len: usize) -> io::Result<Mapping> {
        memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&self.file)
            .map(|raw| Mapping { raw })
    }

    /// `flock(LOCK_SH | LOCK_NB)`: false if somebody holds the exclusive lock.
    pub(crate) fn try_lock_shared(&self) -> io::Result<bool> {
        self.flock(libc::LOCK_SH | libc::LOCK_NB)
    }

    /// `flock(LOCK_EX | LOCK_NB)`: false if somebody holds a lock (shared or exclusive) through
    /// another open file description.
    pub(crate) fn try_lock_exclusive(&self) -> io::Result<bool> {
        self.flock(libc::LOCK_EX | libc::LOCK_NB)
    }

    fn flock(&self, op: libc::c_int) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let ret = unsafe { libc::flock(self.file.as_raw_fd(), op) };
            if ret == 0 {
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => return Ok(false),
                Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
    }
}

/// A shared mapping of a segment file. Hands out a raw pointer only: other processes write
/// the same memory.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: memmap2::MmapRaw,
}

impl Mapping {
    /// The start of the mapping (page aligned).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.raw.as_mut_ptr()
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}

/// `shm_unlink(name)`.
pub(crate) fn shm_unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    cvt(unsafe { libc::shm_unlink(name.as_ptr()) }).map(drop)
}

/// Every name in the shm namespace (without the leading slash), of any file type, sorted.
pub(crate) fn shm_names() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Scans `/proc/*/maps` and `/proc/*/fd` for files of the shm filesystem.
pub(crate) fn scan_shm_users() -> UsersScan {
    let mut scan = UsersScan::default();
    let Ok(shm) = std::fs::metadata(SHM_DIR) else {
        return scan;
    };
    let shm_dev = {
        use std::os::unix::fs::MetadataExt;
        shm.dev()
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return scan;
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return scan;
    };
    scan.locked = parse_locks(&locks, shm_dev);
    scan.complete = true;
    scan.may_hide = proc_hides_pids();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        match scan_process(pid, shm_dev, &mut scan.by_file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {} // exited meanwhile
            Err(_) => {
                use std::os::unix::fs::MetadataExt;
                if let Ok(m) = std::fs::metadata(format!("/proc/{pid}")) {
                    scan.uninspectable.push((pid, m.uid()));
                }
            }
        }
    }
    for pids in scan.by_file.values_mut() {
        pids.sort_unstable();
        pids.dedup();
    }
    scan
}

fn scan_process(
    pid: u32,
    shm_dev: u64,
    by_file: &mut std::collections::HashMap<FileId, Vec<u32>>,
) -> io::Result<()> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    for line in maps.lines() {
        // address perms offset dev inode path
        let mut f = line.split_ascii_whitespace();
        let (Some(dev), Some(ino)) = (f.nth(3), f.next()) else {
            continue;
        };
        if let Some(id) = file_on(shm_dev, dev, ino).filter(|id| id.ino != 0) {
            by_file.entry(id).or_default().push(pid);
        }
    }
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        // stat follows the magic link to the open file (without opening it).
        if let Ok(m) = std::fs::metadata(fd.path()) {
            use std::os::unix::fs::MetadataExt;
            if m.dev() == shm_dev {
                by_file
                    .entry(FileId {
                        dev: shm_dev,
                        ino: m.ino(),
                    })
                    .or_default()
                    .push(pid);
            }
        }
    }
    Ok(())
}

/// The files of device `dev` that `/proc/locks` lists a lock on (lines like
/// `1: FLOCK  ADVISORY  READ 1234 00:1a:5678 0 EOF`, the device as hex `major:minor`, then the
/// inode; waiters' `->` lines included).
fn parse_locks(locks: &str, dev: u64) -> std::collections::HashSet<FileId> {
    locks
        .split_ascii_whitespace()
        .filter_map(|token| {
            let (dev_part, ino) = token.rsplit_once(':')?;
            dev_part.contains(':').then_some(())?;
            file_on(dev, dev_part, ino)
        })
        .collect()
}

/// The file `ino` if `dev_text` (hex `major:minor`, as `/proc` writes devices) is device `dev`.
fn file_on(dev: u64, dev_text: &str, ino: &str) -> Option<FileId> {
    let (maj, min) = dev_text.split_once(':')?;
    let maj = u32::from_str_radix(maj, 16).ok()?;
    let min = u32::from_str_radix(min, 16).ok()?;
    let ino = ino.parse::<u64>().ok()?;
    (maj == libc::major(dev) && min == libc::minor(dev)).then_some(FileId { dev, ino })
}

/// Whether `/proc` is mounted with a `hidepid` option that hides other users' processes.
fn proc_hides_pids() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    info.lines()
        .filter(|l| l.split_ascii_whitespace().nth(4) == Some("/proc"))
        .any(|l| {
            l.split([' ', ','])
                .filter_map(|o| o.strip_prefix("hidepid="))
                .any(|v| v != "0" && v != "off")
        })
}

/// `kill(pid, 0)`: sends no signal, only checks that `pid` exists. Thread ids work too.
pub(crate) fn pid_exists(pid: u32) -> Exists {
    if pid == 0 || pid > i32::MAX as u32 {
        // 0 and negative pids name process groups, never one process.
        return Exists::No;
    }
    // SAFETY: kill with signal 0 sends nothing and touches no memory; pid is positive, so it
    // names one process, not a group.
    let ret = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if ret == 0 {
        return Exists::Yes;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) => Exists::Yes,
        Some(libc::ESRCH) => Exists::No,
        _ => Exists::Unknown,
    }
}

/// Reads `/proc/<pid>/stat` (thread ids work too: `/proc/<tid>` exists while the thread runs).
pub(crate) fn proc_stat(pid: u32) -> ProcStat {
    if pid == 0 {
        return ProcStat::Unreadable;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcStat::Unreadable;
    };
    parse_stat(&stat)
}

/// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
/// spaces and ')', so parsing starts after the last ')'.
fn parse_stat(stat: &str) -> ProcStat {
    let Some(close) = stat.rfind(')') else {
        return ProcStat::Unreadable;
    };
    let mut fields = stat[close + 1..].split_ascii_whitespace();
    match fields.next() {
        // field 3, the state
        Some("Z" | "X" | "x") => ProcStat::Zombie,
        Some(_) => match fields.nth(18).map(str::parse::<u64>) {
            // starttime is field 22; field 3 was consumed, so skip fields 4..=21 (18 fields).
            Some(Ok(start_time)) => ProcStat::Running { start_time },
            _ => ProcStat::Unreadable,
        },
        None => ProcStat::Unreadable,
    }
}

/// The start time of a live (not zombie) process, if `/proc` tells it.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    match proc_stat(pid) {
        ProcStat::Running { start_time } => Some(start_time),
        _ => None,
    }
}

/// The kernel thread id of the calling thread (`gettid(2)`).
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    (unsafe { libc::gettid() }) as u32
}

/// Current `CLOCK_MONOTONIC` time.
pub(crate) fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `FUTEX_WAIT_BITSET` on a shared (not private) futex word with an absolute
/// `CLOCK_MONOTONIC` deadline, or none.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Duration>) -> FutexWait {
    let ts;
    let ts_ptr = match deadline {
        Some(d) => {
            ts = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live, 4-byte aligned atomic for the duration of the call (the kernel
    // only reads it); `ts_ptr` is null or points to a timespec that outlives the call. The
    // futex is shared (no FUTEX_PRIVATE_FLAG) so wakers in other processes reach it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        FutexWait::TimedOut
    } else {
        FutexWait::Woken
    }
}

/// `FUTEX_WAKE` of up to `n` waiters on a shared futex word. Returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: `word` is a live, 4-byte aligned atomic; FUTEX_WAKE does not access it beyond
    // using its address as the key.
    let ret = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
    if ret < 0 {
        0
    } else {
        ret as usize
    }
}

/// `membarrier(2)` commands used by the asymmetric fence (uapi/linux/membarrier.h).
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

/// Registers this process to receive `MEMBARRIER_CMD_GLOBAL_EXPEDITED` barriers: from then on
/// a barrier issued by any process runs a full memory barrier on every running thread of this
/// one. False if the kernel (or a seccomp filter, or miri) does not allow it.
pub(crate) fn membarrier_register_global_expedited() -> bool {
    if cfg!(miri) {
        return false;
    }
    // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
            0 as libc::c_int,
        )
    };
    ret == 0
}

/// Runs a full memory barrier on every running thread of every process that registered with
/// [`membarrier_register_global_expedited`] (and on this one). False if the call failed.
pub(crate) fn membarrier_global_expedited() -> bool {
    if cfg!(miri) {
        return false;
    }
    // SAFETY: as above.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_GLOBAL_EXPEDITED,
            0 as libc::c_int,
        )
    };
    ret == 0
}

/// Yields the CPU to another runnable thread.
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let line = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_stat(line), ProcStat::Running { start_time: 777 });
        let zombie = "1234 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_stat(zombie), ProcStat::Zombie);
        assert_eq!(parse_stat("garbage"), ProcStat::Unreadable);
        assert_eq!(parse_stat("1 (x) S 1 2"), ProcStat::Unreadable);
    }

    #[test]
    fn lock_lines_parse() {
        let dev = libc::makedev(0, 0x1a);
        let locks = "1: FLOCK  ADVISORY  READ 1234 00:1a:5678 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 99 00:1a:42 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 7 fe:00:5678 0 EOF\n";
        let got = parse_locks(locks, dev);
        assert!(got.contains(&FileId { dev, ino: 5678 }));
        assert!(got.contains(&FileId { dev, ino: 42 }));
        assert_eq!(got.len(), 2, "another device's lock is not ours");
    }
}
