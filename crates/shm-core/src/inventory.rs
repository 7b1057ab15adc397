//! What is in the shm namespace, who uses it, and removing it safely: the API under
//! `shm-ipc ls`, `inspect`, `rm` and `gc`.
//!
//! - [`list_segments`] describes every name in the namespace ([`SegmentInfo`]): its
//!   [`SegmentState`] (published, being created, a leftover without a header, corrupt, foreign,
//!   not a file), kind, layout, size, creator and whether it lives, users and age.
//! - [`inspect`] does the same for one name.
//! - [`remove`] unlinks a name only if nobody uses it; [`remove_forced`] unlinks it anyway.
//!
//! # Users
//!
//! "Creator dead" is not "unused": a segment is used by every process that maps it or holds it
//! open. [`Users`] is found in two ways:
//!
//! 1. Every [`Segment`](crate::Segment) handle holds a shared `flock` on its file. A remover's
//!    exclusive `flock` therefore fails while any handle lives, in any process of any user,
//!    even where `/proc` shows nothing.
//! 2. `/proc/<pid>/maps` and `/proc/<pid>/fd` of every process name the processes that map or
//!    hold the file (Python's `mmap`, or anything else that does not use this crate, too).
//!
//! The answer is [`Users::Unknown`] when neither can rule out a user: `/proc` cannot be
//! listed; a process that could open the file (its owner's uid, or anybody if the mode grants
//! group or other access) cannot be inspected; `/proc` is mounted with `hidepid` and such a
//! process could be hidden; or a handle holds the lock but no process was seen. Processes of
//! root can open any file but are not counted when the scan cannot inspect them (run the scan
//! as root to see them).
//!
//! # Which leftovers are reclaimed
//!
//! A creator killed between `shm_open` and publishing leaves a 0-byte, all-zero or
//! half-written file that blocks the name. [`SegmentBuilder::create`] and
//! [`open_or_create`](crate::SegmentBuilder::open_or_create) remove it and take the name when
//! all of this holds ([`SegmentInfo::is_abandoned`] applies the same rule, for `gc`):
//!
//! - it was never published (state [`Initialising`](SegmentState::Initialising),
//!   [`Empty`](SegmentState::Empty) or [`NoHeader`](SegmentState::NoHeader));
//! - its creator is known [`Dead`](Liveness::Dead) (the header names it), or, for a file with
//!   no header to name one, it was last modified at least [`RECLAIM_GRACE`] ago;
//! - nobody uses it: [`Users::Known`] and empty, and no handle holds its lock.
//!
//! A creator that is alive or [`Unknown`](Liveness::Unknown), any user, or any doubt keeps the
//! file. The unlink happens under the file's exclusive `flock` and only while the name still
//! refers to the file that was judged, so two reclaimers never remove each other's new segment.
//!
//! [`SegmentBuilder::create`]: crate::SegmentBuilder::create

use crate::error::CreateError;
use crate::header::{
    Expect, ImmutableFields, ObjectKind, HEADER_SIZE, MAGIC, STATE_INIT, STATE_READY,
};
use crate::liveness::Liveness;
use crate::name::SegmentName;
use crate::os;
use crate::typecode::{ElementLayout, TypeCode};
use crate::ProcessId;
use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

/// How long a leftover with no header (a 0-byte or all-zero file, which names no creator) must
/// have been left unmodified before it may be reclaimed. A live creator holds the file open
/// and locked, so this only guards the microseconds between its `shm_open` and its lock.
pub const RECLAIM_GRACE: Duration = Duration::from_secs(2);

/// The state of a name in the shm namespace, as read from its header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentState {
    /// Published by its creator; the header is valid.
    Ready,
    /// An shm-ipc header with the state word still 0: its creator is initialising it, or died
    /// while doing so (see [`SegmentInfo::creator_liveness`]).
    Initialising,
    /// 0 bytes: created, never sized.
    Empty,
    /// Sized, but the header has no magic number yet (all zeros, or shorter than a header).
    NoHeader,
    /// An shm-ipc magic number, but the header is invalid.
    Corrupt {
        /// What is wrong, as the opener would report it.
        reason: String,
    },
    /// A file that is not an shm-ipc segment (for example Python's `SharedMemory`).
    Foreign,
    /// Not a regular file (a FIFO, a directory, a symbolic link...).
    NotRegularFile {
        /// What it is.
        found: &'static str,
    },
    /// It could not be opened for reading (permission).
    Unreadable,
}

impl SegmentState {
    /// Whether a creator never finished publishing it.
    pub fn is_unpublished(&self) -> bool {
        matches!(
            self,
            SegmentState::Initialising | SegmentState::Empty | SegmentState::NoHeader
        )
    }
}

impl fmt::Display for SegmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentState::Ready => f.write_str("ready"),
            SegmentState::Initialising => f.write_str("initialising"),
            SegmentState::Empty => f.write_str("empty"),
            SegmentState::NoHeader => f.write_str("no header"),
            SegmentState::Corrupt { reason } => write!(f, "corrupt ({reason})"),
            SegmentState::Foreign => f.write_str("foreign"),
            SegmentState::NotRegularFile { found } => write!(f, "not a file ({found})"),
            SegmentState::Unreadable => f.write_str("unreadable"),
        }
    }
}

/// Which processes use a segment (map it or hold it open). See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Users {
    /// Exactly these processes (sorted; possibly none).
    Known(Vec<u32>),
    /// At least these processes (possibly none), and maybe others that could not be seen.
    Unknown {
        /// The processes that were seen.
        seen: Vec<u32>,
    },
}

impl Users {
    /// True only when it is known that no process uses the segment.
    pub fn is_unused(&self) -> bool {
        matches!(self, Users::Known(p) if p.is_empty())
    }

    /// The processes seen using it.
    pub fn seen(&self) -> &[u32] {
        match self {
            Users::Known(p) | Users::Unknown { seen: p } => p,
        }
    }
}

impl fmt::Display for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, pids: &[u32]| {
            for (i, p) in pids.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{p}")?;
            }
            Ok(())
        };
        match self {
            Users::Known(p) if p.is_empty() => f.write_str("none"),
            Users::Known(p) => list(f, p),
            Users::Unknown { seen } if seen.is_empty() => f.write_str("unknown"),
            Users::Unknown { seen } => {
                list(f, seen)?;
                f.write_str(",?")
            }
        }
    }
}

/// A description of one name in the shm namespace, as [`list_segments`] and [`inspect`] find
/// it. Fields that the state does not provide are `None`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The name.
    pub name: SegmentName,
    /// What the header says about it.
    pub state: SegmentState,
    /// The file size in bytes.
    pub file_len: u64,
    /// The object kind (from an shm-ipc header).
    pub kind: Option<ObjectKind>,
    /// The element layout (typecode or record format), if the header's layout is valid.
    pub layout: Option<ElementLayout>,
    /// The stored layout format string (as found; may be garbage in a corrupt header).
    pub format: String,
    /// Element count or capacity.
    pub count: Option<u64>,
    /// Bytes of body.
    pub body_len: Option<u64>,
    /// Who created it, if the header says.
    pub creator: Option<ProcessId>,
    /// Whether the creator still runs.
    pub creator_liveness: Option<Liveness>,
    /// Which processes use it.
    pub users: Users,
    /// Time since the file was last modified (for a segment: since it was created and sized).
    pub age: Option<Duration>,
    /// Permission bits.
    pub mode: u32,
    /// The owner's user id.
    pub owner_uid: u32,
    /// Whether some handle holds the segment's lock (a live user, even if no process was seen).
    pub locked: bool,
    file_id: Option<os::FileId>,
}

impl SegmentInfo {
    /// The typecode, if the layout is a plain typecode.
    pub fn typecode(&self) -> Option<TypeCode> {
        self.layout.and_then(|l| l.typecode())
    }

    /// Whether `gc` may remove it: nobody uses it, and it is either a leftover that will never
    /// be published (see the [module docs](self)) or a segment whose creator is dead. Foreign
    /// files, non-files, and anything with a live or unknown creator or user are kept.
    pub fn is_abandoned(&self) -> bool {
        if !self.users.is_unused() || self.locked {
            return false;
        }
        match self.state {
            SegmentState::Ready | SegmentState::Corrupt { .. } => {
                self.creator_liveness == Some(Liveness::Dead)
            }
            SegmentState::Initialising | SegmentState::Empty | SegmentState::NoHeader => {
                match (self.creator, self.creator_liveness) {
                    (Some(_), Some(l)) => l == Liveness::Dead,
                    _ => self.age.is_some_and(|a| a >= RECLAIM_GRACE),
                }
            }
            _ => false,
        }
    }

    /// Removes this segment if nobody uses it (as [`remove`]), and only if the name still
    /// refers to the file that was listed.
    ///
    /// # Errors
    ///
    /// As [`remove`]; [`RemoveError::Changed`] if the name now refers to another file.
    pub fn remove(&self) -> Result<(), RemoveError> {
        remove_checked(&self.name, self.file_id)
    }

    /// Removes this name even while the segment is in use (as [`remove_forced`]).
    ///
    /// # Errors
    ///
    /// As [`remove_forced`].
    pub fn remove_forced(&self) -> Result<(), RemoveError> {
        remove_forced(&self.name)
    }
}

/// Why [`inspect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum InspectError {
    /// Nothing has this name.
    NotFound {
        /// The name.
        name: String,
    },
    /// The shm namespace or `/proc` could not be read.
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for InspectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InspectError::NotFound { name } => {
                write!(f, "no shared-memory segment named /{name}")
            }
            InspectError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

impl std::error::Error for InspectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InspectError::Io { source, .. } => Some(source),
            InspectError::NotFound { .. } => None,
        }
    }
}

/// Why [`remove`] or [`remove_forced`] did not remove a name.
#[derive(Debug)]
#[non_exhaustive]
pub enum RemoveError {
    /// Nothing has this name.
    NotFound {
        /// The name.
        name: String,
    },
    /// Live processes (or ones that cannot be ruled out) use the segment.
    InUse {
        /// The name.
        name: String,
        /// Who uses it.
        users: Users,
        /// Whether a handle holds its lock.
        locked: bool,
    },
    /// The name is not a regular file; only a forced removal removes it.
    NotRegularFile {
        /// The name.
        name: String,
        /// What it is.
        found: &'static str,
    },
    /// The name refers to another file than the one listed (it was re-created).
    Changed {
        /// The name.
        name: String,
    },
    /// This process may not remove it.
    PermissionDenied {
        /// The name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// Another OS error.
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveError::NotFound { name } => write!(f, "no shared-memory segment named /{name}"),
            RemoveError::InUse {
                name,
                users,
                locked,
            } => {
                write!(f, "segment /{name} is in use (users: {users}")?;
                if *locked {
                    f.write_str("; a handle holds its lock")?;
                }
                f.write_str("); force the removal to unlink it anyway")
            }
            RemoveError::NotRegularFile { name, found } => write!(
                f,
                "/{name} is a {found}, not a segment; force the removal to unlink it"
            ),
            RemoveError::Changed { name } => write!(
                f,
                "/{name} was re-created since it was listed; list it again"
            ),
            RemoveError::PermissionDenied { name, .. } => {
                write!(f, "permission denied removing /{name}")
            }
            RemoveError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

impl std::error::Error for RemoveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RemoveError::PermissionDenied { source, .. } | RemoveError::Io { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

const _: () = {
    const fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<InspectError>();
    assert_error::<RemoveError>();
};

/// Describes every name in the shm namespace that is a valid [`SegmentName`] (sorted by name),
/// including leftovers of dead creators, corrupt and foreign files and non-files, each with its
/// [`SegmentState`] and [`Users`]. Scans `/proc` once.
///
/// # Errors
///
/// If the namespace cannot be listed. Single files that vanish meanwhile are skipped; files
/// that cannot be read are listed as [`SegmentState::Unreadable`].
pub fn list_segments() -> io::Result<Vec<SegmentInfo>> {
    let mut found = Vec::new();
    for bare in os::shm_names()? {
        let Ok(name) = SegmentName::new(&bare) else {
            continue;
        };
        if let Some(look) = look_at(&name) {
            found.push(look);
        }
    }
    // Scan after every descriptor opened for looking is closed again.
    let scan = os::scan_shm_users();
    Ok(found
        .into_iter()
        .map(|look| look.into_info(&scan))
        .collect())
}

/// Describes the name `name` (as one entry of [`list_segments`]).
///
/// # Errors
///
/// [`InspectError::NotFound`] if nothing has the name.
pub fn inspect(name: &SegmentName) -> Result<SegmentInfo, InspectError> {
    let look = look_at(name).ok_or_else(|| InspectError::NotFound {
        name: name.as_str().into(),
    })?;
    let scan = os::scan_shm_users();
    Ok(look.into_info(&scan))
}

/// Removes the segment `name` unless it is in use.
///
/// Refuses with [`RemoveError::InUse`] while a live process maps or holds it, while a handle
/// holds its lock, or while [`Users`] is [`Unknown`](Users::Unknown); refuses a name that is not
/// a regular file ([`RemoveError::NotRegularFile`]). The unlink happens under the file's
/// exclusive lock, so no handle of this crate can open it in between; a process that maps the
/// file without this crate in the microseconds between the check and the unlink keeps its
/// mapping, as with any unlink.
///
/// # Errors
///
/// See above, plus [`RemoveError::NotFound`] and OS errors.
pub fn remove(name: &SegmentName) -> Result<(), RemoveError> {
    remove_checked(name, None)
}

/// Removes the name `name` whatever it refers to and whoever uses it. Processes that map the
/// segment keep their mapping; new opens fail with `NotFound`.
///
/// # Errors
///
/// [`RemoveError::NotFound`], [`RemoveError::PermissionDenied`], or another OS error.
pub fn remove_forced(name: &SegmentName) -> Result<(), RemoveError> {
    os::shm_unlink(&name.to_c_name()).map_err(|e| unlink_error(name, e))
}

fn unlink_error(name: &SegmentName, e: io::Error) -> RemoveError {
    match e.kind() {
        io::ErrorKind::NotFound => RemoveError::NotFound {
            name: name.as_str().into(),
        },
        io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied {
            name: name.as_str().into(),
            source: e,
        },
        _ => RemoveError::Io {
            op: "shm_unlink",
            source: e,
        },
    }
}

fn remove_checked(name: &SegmentName, expected: Option<os::FileId>) -> Result<(), RemoveError> {
    let st = os::shm_lstat(name.as_str()).map_err(|e| unlink_error(name, e))?;
    if st.file_type != os::FileType::Regular {
        return Err(RemoveError::NotRegularFile {
            name: name.as_str().into(),
            found: st.file_type.describe(),
        });
    }
    if expected.is_some_and(|id| id != st.id) {
        return Err(RemoveError::Changed {
            name: name.as_str().into(),
        });
    }
    // Users first, while this process holds no descriptor of the file (it would count itself).
    let scan = os::scan_shm_users();
    let users = users_of(&st, &scan);
    match unlink_if_unused(name, st.id, users) {
        Ok(Unlinked::Yes) => Ok(()),
        Ok(Unlinked::Vanished) => Err(RemoveError::NotFound {
            name: name.as_str().into(),
        }),
        Ok(Unlinked::Changed) => Err(RemoveError::Changed {
            name: name.as_str().into(),
        }),
        Ok(Unlinked::InUse { users, locked }) => Err(RemoveError::InUse {
            name: name.as_str().into(),
            users,
            locked,
        }),
        Err(e) => Err(unlink_error(name, e)),
    }
}

enum Unlinked {
    Yes,
    Vanished,
    Changed,
    InUse { users: Users, locked: bool },
}

/// Unlinks `name` if it still refers to `id`, `users` says nobody uses it, and nobody holds the
/// file's lock; all under the file's exclusive lock.
fn unlink_if_unused(name: &SegmentName, id: os::FileId, users: Users) -> io::Result<Unlinked> {
    if !users.is_unused() {
        return Ok(Unlinked::InUse {
            users,
            locked: false,
        });
    }
    let file = match os::shm_open(&name.to_c_name(), false) {
        Ok(f) => f,
        Err(os::OpenFailure::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Unlinked::Vanished)
        }
        Err(os::OpenFailure::Io(e)) => return Err(e),
        Err(os::OpenFailure::NotRegular(_)) => return Ok(Unlinked::Changed),
    };
    if file.stat()?.id != id {
        return Ok(Unlinked::Changed);
    }
    if !file.try_lock_exclusive()? {
        return Ok(Unlinked::InUse {
            users: Users::Unknown { seen: Vec::new() },
            locked: true,
        });
    }
    // Under the exclusive lock: no handle of this crate can lock the file now, and openers that
    // find it unlinked after they get their lock start over.
    match os::shm_lstat(name.as_str()) {
        Ok(st) if st.id == id => {}
        Ok(_) => return Ok(Unlinked::Changed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Unlinked::Vanished),
        Err(e) => return Err(e),
    }
    match os::shm_unlink(&name.to_c_name()) {
        Ok(()) => Ok(Unlinked::Yes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Unlinked::Vanished),
        Err(e) => Err(e),
    }
    // `file` closes here, releasing the lock.
}

/// The outcome of [`reclaim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reclaim {
    /// The leftover was removed: create again.
    Reclaimed,
    /// The name vanished meanwhile: create again.
    Vanished,
    /// The file stays (published, maybe alive, in use, or not ours to judge).
    Kept,
}

/// Removes the leftover at `name` if the rule of the module docs allows it.
pub(crate) fn reclaim(name: &SegmentName) -> Result<Reclaim, CreateError> {
    let Some(look) = look_at(name) else {
        return Ok(Reclaim::Vanished);
    };
    if let SegmentState::NotRegularFile { found } = look.state {
        return Err(CreateError::NotRegularFile {
            name: name.as_str().into(),
            found,
        });
    }
    let candidate = match look.state {
        SegmentState::Initialising | SegmentState::Empty | SegmentState::NoHeader => {
            match look.creator() {
                Some(c) => c.liveness() == Liveness::Dead,
                None => look.age().is_some_and(|a| a >= RECLAIM_GRACE),
            }
        }
        _ => false,
    };
    let Some(stat) = look.stat.filter(|_| candidate) else {
        return Ok(Reclaim::Kept);
    };
    let scan = os::scan_shm_users();
    let users = users_of(&stat, &scan);
    match unlink_if_unused(name, stat.id, users) {
        Ok(Unlinked::Yes) => Ok(Reclaim::Reclaimed),
        Ok(Unlinked::Vanished | Unlinked::Changed) => Ok(Reclaim::Vanished),
        Ok(Unlinked::InUse { .. }) => Ok(Reclaim::Kept),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(Reclaim::Kept),
        Err(source) => Err(CreateError::Io {
            op: "reclaim",
            source,
        }),
    }
}

/// What one look at a name found (before the users are known).
struct Look {
    name: SegmentName,
    state: SegmentState,
    stat: Option<os::FileStat>,
    fields: Option<ImmutableFields>,
    layout: Option<ElementLayout>,
}

impl Look {
    fn age(&self) -> Option<Duration> {
        let modified = self.stat?.modified?;
        Some(
            SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::ZERO),
        )
    }

    fn creator(&self) -> Option<ProcessId> {
        self.fields
            .filter(|f| f.magic == MAGIC && f.creator_pid != 0)
            .map(|f| ProcessId::from_parts(f.creator_pid, f.creator_start))
    }

    fn into_info(self, scan: &os::UsersScan) -> SegmentInfo {
        let locked = self.stat.is_some_and(|st| scan.locked.contains(&st.id));
        let users = match &self.stat {
            Some(st) if st.file_type == os::FileType::Regular => users_of(st, scan),
            _ => Users::Known(Vec::new()),
        };
        let creator = self.creator();
        let f = self.fields.filter(|f| f.magic == MAGIC);
        let format = f
            .map(|f| {
                let end = f
                    .format
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(f.format.len());
                String::from_utf8_lossy(&f.format[..end]).into_owned()
            })
            .unwrap_or_default();
        SegmentInfo {
            age: self.age(),
            name: self.name,
            state: self.state,
            file_len: self.stat.map_or(0, |s| s.len),
            kind: f.and_then(|f| ObjectKind::from_u32(f.kind)),
            layout: self.layout,
            format,
            count: f.map(|f| f.count),
            body_len: f.map(|f| f.body_len),
            creator,
            creator_liveness: creator.map(|c| c.liveness()),
            users,
            mode: self.stat.map_or(0, |s| s.mode),
            owner_uid: self.stat.map_or(0, |s| s.uid),
            locked,
            file_id: self.stat.map(|s| s.id),
        }
    }
}

/// Looks at `name` without mapping it: `None` if nothing has the name. The descriptor opened to
/// read the header is closed again before this returns.
fn look_at(name: &SegmentName) -> Option<Look> {
    let lstat = match os::shm_lstat(name.as_str()) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(_) => {
            return Some(Look {
                name: name.clone(),
                state: SegmentState::Unreadable,
                stat: None,
                fields: None,
                layout: None,
            })
        }
    };
    let mut look = Look {
        name: name.clone(),
        state: SegmentState::Unreadable,
        stat: Some(lstat),
        fields: None,
        layout: None,
    };
    if lstat.file_type != os::FileType::Regular {
        look.state = SegmentState::NotRegularFile {
            found: lstat.file_type.describe(),
        };
        return Some(look);
    }
    let file = match os::shm_open(&name.to_c_name(), false) {
        Ok(f) => f,
        Err(os::OpenFailure::Io(e)) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(os::OpenFailure::NotRegular(t)) => {
            look.state = SegmentState::NotRegularFile {
                found: t.describe(),
            };
            return Some(look);
        }
        Err(os::OpenFailure::Io(_)) => return Some(look),
    };
    let Ok(st) = file.stat() else {
        return Some(look);
    };
    look.stat = Some(st);
    if st.len == 0 {
        look.state = SegmentState::Empty;
        return Some(look);
    }
    // A pread copy of what there is of the header (zeros past the end of a short file).
    let mut bytes = [0u8; HEADER_SIZE];
    let have = usize::try_from(st.len)
        .unwrap_or(HEADER_SIZE)
        .min(HEADER_SIZE);
    if file.read_exact_at(&mut bytes[..have], 0).is_err() {
        return Some(look);
    }
    let (fields, state, checksum) = ImmutableFields::from_bytes(&bytes);
    look.fields = Some(fields);
    look.layout = ElementLayout::decode(&fields.format, fields.elem_size, fields.elem_align).ok();
    look.state = if fields.magic == 0 {
        SegmentState::NoHeader
    } else if fields.magic != MAGIC {
        SegmentState::Foreign
    } else if have < HEADER_SIZE {
        SegmentState::Corrupt {
            reason: format!("{} bytes, shorter than a header", st.len),
        }
    } else if state == STATE_INIT {
        SegmentState::Initialising
    } else if state != STATE_READY {
        SegmentState::Corrupt {
            reason: format!("unknown state word {state:#010x}"),
        }
    } else {
        let any = Expect {
            kind: None,
            layout: None,
            count: None,
        };
        match fields.validate(checksum, st.len, &any) {
            Ok(_) => SegmentState::Ready,
            Err(e) => SegmentState::Corrupt {
                reason: e.to_string(),
            },
        }
    };
    Some(look)
}

/// Who uses the file `st`, from a `/proc` scan and whether a handle holds its lock (see the
/// module docs for when the answer is `Unknown`).
fn users_of(st: &os::FileStat, scan: &os::UsersScan) -> Users {
    let locked = scan.locked.contains(&st.id);
    let seen = scan.by_file.get(&st.id).cloned().unwrap_or_default();
    if !scan.complete {
        return Users::Unknown { seen };
    }
    let me = os::euid();
    let others_may_open = st.mode & 0o077 != 0;
    let could_open = |uid: u32| uid != 0 && (uid == st.uid || others_may_open);
    let hidden_candidate = scan.uninspectable.iter().any(|&(_, uid)| could_open(uid));
    let may_be_hidden = scan.may_hide && me != 0 && (st.uid != me || others_may_open);
    if hidden_candidate || may_be_hidden || (locked && seen.is_empty()) {
        Users::Unknown { seen }
    } else {
        Users::Known(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(uid: u32, mode: u32) -> os::FileStat {
        os::FileStat {
            len: 4096,
            id: os::FileId { dev: 1, ino: 2 },
            file_type: os::FileType::Regular,
            mode,
            uid,
            modified: None,
        }
    }

    fn scan(by: &[u32], uninspectable: &[(u32, u32)], may_hide: bool) -> os::UsersScan {
        let mut s = os::UsersScan {
            complete: true,
            may_hide,
            uninspectable: uninspectable.to_vec(),
            ..Default::default()
        };
        if !by.is_empty() {
            s.by_file.insert(os::FileId { dev: 1, ino: 2 }, by.to_vec());
        }
        s
    }

    #[test]
    fn users_rule() {
        let me = os::euid();
        let other = me.wrapping_add(1).max(1);
        let mine = stat(me, 0o600);
        assert_eq!(
            users_of(&mine, &scan(&[], &[], false)),
            Users::Known(vec![])
        );
        assert_eq!(
            users_of(&mine, &scan(&[7, 9], &[], false)),
            Users::Known(vec![7, 9])
        );
        // A handle holds the lock, nobody seen: somebody we cannot see.
        let mut locked = scan(&[], &[], false);
        locked.locked.insert(os::FileId { dev: 1, ino: 2 });
        assert_eq!(users_of(&mine, &locked), Users::Unknown { seen: vec![] });
        // No /proc at all.
        let incomplete = os::UsersScan::default();
        assert!(!users_of(&mine, &incomplete).is_unused());
        // An uninspectable process of the owner could map it; root's and strangers' are not
        // counted for a 0600 file, but strangers are for a 0666 one.
        let owner = stat(other, 0o600);
        assert!(!users_of(&owner, &scan(&[], &[(5, other)], false)).is_unused());
        assert!(users_of(&owner, &scan(&[], &[(5, 0)], false)).is_unused());
        assert!(users_of(&mine, &scan(&[], &[(5, other)], false)).is_unused());
        let open = stat(me, 0o666);
        assert!(!users_of(&open, &scan(&[], &[(5, other)], false)).is_unused());
        // hidepid: other users' processes may be invisible.
        if me != 0 {
            assert!(!users_of(&open, &scan(&[], &[], true)).is_unused());
            assert!(users_of(&mine, &scan(&[], &[], true)).is_unused());
        }
    }

    fn info(state: SegmentState, creator: Option<Liveness>, users: Users, age: u64) -> SegmentInfo {
        SegmentInfo {
            name: SegmentName::new("x").unwrap(),
            state,
            file_len: 0,
            kind: None,
            layout: None,
            format: String::new(),
            count: None,
            body_len: None,
            creator: creator.map(|_| ProcessId::from_parts(42, 1)),
            creator_liveness: creator,
            users,
            age: Some(Duration::from_secs(age)),
            mode: 0o600,
            owner_uid: 0,
            locked: false,
            file_id: None,
        }
    }

    #[test]
    fn abandonment_rule() {
        use Liveness::{Alive, Dead, Unknown};
        use SegmentState as S;
        let none = || Users::Known(vec![]);
        let old = RECLAIM_GRACE.as_secs() + 1;
        // Dead creator, unused: garbage, published or not.
        for state in [S::Ready, S::Initialising, S::Corrupt { reason: "x".into() }] {
            assert!(
                info(state.clone(), Some(Dead), none(), 0).is_abandoned(),
                "{state}"
            );
            // A creator alive or unknown keeps it.
            assert!(!info(state.clone(), Some(Alive), none(), old).is_abandoned());
            assert!(!info(state.clone(), Some(Unknown), none(), old).is_abandoned());
            // Creator dead is not unused.
            assert!(!info(state.clone(), Some(Dead), Users::Known(vec![5]), 0).is_abandoned());
            let unknown = Users::Unknown { seen: vec![] };
            assert!(!info(state.clone(), Some(Dead), unknown, 0).is_abandoned());
        }
        let mut locked = info(S::Ready, Some(Dead), none(), 0);
        locked.locked = true;
        assert!(!locked.is_abandoned(), "a handle holds its lock");
        // No creator named: only after the grace period.
        for state in [S::Empty, S::NoHeader, S::Initialising] {
            assert!(
                !info(state.clone(), None, none(), 0).is_abandoned(),
                "{state}"
            );
            assert!(
                info(state.clone(), None, none(), old).is_abandoned(),
                "{state}"
            );
        }
        // Never: foreign files, non-files, unreadable ones, a Ready segment with no creator.
        for state in [
            S::Foreign,
            S::NotRegularFile { found: "FIFO" },
            S::Unreadable,
            S::Ready,
        ] {
            assert!(
                !info(state.clone(), None, none(), old).is_abandoned(),
                "{state}"
            );
        }
    }

    #[test]
    fn users_display() {
        assert_eq!(Users::Known(vec![]).to_string(), "none");
        assert_eq!(Users::Known(vec![1, 2]).to_string(), "1,2");
        assert_eq!(Users::Unknown { seen: vec![] }.to_string(), "unknown");
        assert_eq!(Users::Unknown { seen: vec![3] }.to_string(), "3,?");
    }
}
