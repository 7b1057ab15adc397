//! Named shared-memory segments: create, open, open-or-create, unlink.
//!
//! # Lifecycle
//!
//! - **Create** is exclusive. The creator takes the name (`O_CREAT|O_EXCL`), sizes the file,
//!   writes the header with its identity (pid and start time), runs the caller's `init` on the
//!   zeroed body, and then publishes: it stores the state word READY with Release.
//! - **Open** never blocks on a non-segment: the name is opened with `O_NONBLOCK|O_NOFOLLOW`
//!   and anything but a regular file is [`OpenError::NotRegularFile`]. The opener reads a copy of
//!   the header (`pread`, so a truncated file is an error, not `SIGBUS`), waits up to
//!   [`SegmentBuilder::open_timeout`] for READY, and maps the file only once it is published and
//!   long enough. If the header names a creator that died before publishing, the opener stops
//!   at once with [`OpenError::CreatorDied`].
//! - **Users**: every handle holds a shared `flock` on its file for as long as it lives, so a
//!   remover can tell "some handle, in some process of some user, still uses this" without
//!   `/proc` (see [`crate::inventory`]).
//! - **Leftovers** of a creator killed between `shm_open` and publishing (a 0-byte, all-zero or
//!   half-written file) are reclaimed by [`create`](SegmentBuilder::create) and
//!   [`open_or_create`](SegmentBuilder::open_or_create) under the rule of
//!   [`crate::inventory`]: never while the creator may be alive or anybody uses the file.
//! - **Drop**: the creator's handle unlinks the name (only if the name still refers to its own
//!   file) unless told to [`persist`](Segment::persist); openers never unlink.

use crate::error::{CreateError, OpenError};
use crate::header::{
    Expect, Header, ImmutableFields, ObjectKind, RawHeader, HEADER_SIZE, MAGIC, STATE_INIT,
    STATE_READY,
};
use crate::inventory::{self, Reclaim};
use crate::liveness::Liveness;
use crate::name::SegmentName;
use crate::os;
use crate::sync::atomic::Ordering;
use crate::sync::Deadline;
use crate::typecode::{ElementLayout, TypeCode};
use crate::ProcessId;
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Default time an opener waits for the creator to publish a segment.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// A mapped, validated, named shared-memory segment.
///
/// The creator's handle unlinks the name when dropped unless [`persist`](Self::persist) was
/// called; an opener's handle never unlinks (the lesson of CPython's resource tracker, which
/// unlinks segments that a process merely attached). The mapping itself lives until the last
/// handle in each process is dropped.
///
/// The body is other processes' memory too: it is handed out as a raw pointer only, and every
/// value read from it must be validated before use.
///
/// See the [crate docs](crate) for an example and the [module docs](self) for the lifecycle.
pub struct Segment {
    name: SegmentName,
    map: os::Mapping,
    /// Kept open for the handle's life: it holds the shared `flock` that marks the segment as
    /// in use.
    _file: os::ShmFile,
    header: Header,
    creator: bool,
    persist: AtomicBool,
    /// The file this handle mapped: the drop of a creator's handle unlinks the name only while
    /// it still refers to this file.
    file_id: os::FileId,
}

impl Segment {
    /// A builder for a segment of `kind` named `name`.
    pub fn builder(name: &SegmentName, kind: ObjectKind) -> SegmentBuilder {
        SegmentBuilder {
            name: name.clone(),
            kind,
            layout: ElementLayout::of_typecode(TypeCode::UByte),
            layout_set: false,
            count: None,
            param: 0,
            body_len: None,
            mode: 0o600,
            timeout: DEFAULT_OPEN_TIMEOUT,
        }
    }

    /// The name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The start of the body (128-byte aligned, `body_len()` bytes).
    pub fn body(&self) -> NonNull<u8> {
        debug_assert!(self.map.len() >= HEADER_SIZE + self.body_len());
        // SAFETY: the mapping is at least HEADER_SIZE + body_len bytes long (checked on create
        // and open), so the offset stays inside it.
        let p = unsafe { self.map.as_ptr().add(HEADER_SIZE) };
        NonNull::new(p).unwrap_or(NonNull::dangling())
    }

    /// Bytes in the body.
    pub fn body_len(&self) -> usize {
        self.header.body_len as usize
    }

    /// Whether this handle created the segment.
    pub fn is_creator(&self) -> bool {
        self.creator
    }

    /// Keeps the name after this (creator's) handle is dropped.
    pub fn persist(&self) {
        self.persist
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the creator's handle will unlink the name on drop.
    pub fn unlinks_on_drop(&self) -> bool {
        self.creator && !self.persist.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Removes the name now, if it still refers to this handle's segment. Processes that have
    /// the segment mapped keep using it; new opens fail with `NotFound`. This handle will not
    /// unlink again on drop.
    ///
    /// # Errors
    ///
    /// The OS error; `NotFound` if the name is gone or now refers to another segment (which is
    /// left alone).
    pub fn unlink(&self) -> io::Result<()> {
        self.persist
            .store(true, std::sync::atomic::Ordering::Relaxed);
        match os::shm_lstat(self.name.as_str()) {
            Ok(st) if st.id == self.file_id => os::shm_unlink(&self.name.to_c_name()),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the name now refers to another segment",
            )),
            Err(e) => Err(e),
        }
    }

    /// Removes the name `name` unconditionally, whatever it refers to (a segment in use, a
    /// leftover, a FIFO). Prefer [`remove`](Self::remove), which refuses while the segment is in
    /// use.
    ///
    /// # Errors
    ///
    /// The OS error, `NotFound` if there is none.
    pub fn unlink_name(name: &SegmentName) -> io::Result<()> {
        os::shm_unlink(&name.to_c_name())
    }

    /// Removes the segment `name` unless a live process (or one whose use cannot be ruled out)
    /// still uses it. See [`inventory::remove`].
    ///
    /// # Errors
    ///
    /// [`inventory::RemoveError`] says why not.
    pub fn remove(name: &SegmentName) -> Result<(), inventory::RemoveError> {
        inventory::remove(name)
    }

    /// Removes the name `name` even while the segment is in use (users keep their mapping). See
    /// [`inventory::remove_forced`].
    ///
    /// # Errors
    ///
    /// [`inventory::RemoveError::NotFound`], or the OS error.
    pub fn remove_forced(name: &SegmentName) -> Result<(), inventory::RemoveError> {
        inventory::remove_forced(name)
    }

    /// Whether anything has the name `name`: a segment, a leftover of a creator that died, or a
    /// file that is not a segment at all (then [`create`](SegmentBuilder::create) fails). Never
    /// opens the file, so a FIFO at the name cannot block.
    pub fn exists(name: &SegmentName) -> bool {
        os::shm_lstat(name.as_str()).is_ok()
    }

    fn raw_header(&self) -> &RawHeader {
        // SAFETY: the mapping starts page-aligned and is at least HEADER_SIZE bytes; RawHeader
        // is made of atomics only, so shared access from other processes is not a data race.
        unsafe { &*self.map.as_ptr().cast::<RawHeader>() }
    }

    /// Whether the header's state word still says READY (another process may have overwritten
    /// it; objects can use this as a cheap sanity check).
    pub fn is_ready(&self) -> bool {
        self.raw_header().state.load(Ordering::Acquire) == STATE_READY
    }
}

// Handles move between threads and are shared by them (the body is reached through raw pointers
// and atomics only).
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Segment>();
};

impl Drop for Segment {
    fn drop(&mut self) {
        if self.unlinks_on_drop() {
            // Only if the name still refers to our file: somebody may have unlinked it and
            // created a successor under the same name, which is not ours to remove. lstat does
            // not open the name, so whatever is there now (even a FIFO) cannot block us. (A new
            // file could still appear between this check and the unlink; that window is a few
            // microseconds instead of the whole life of the handle.)
            let _ = self.unlink();
        }
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("creator", &self.creator)
            .field("unlinks_on_drop", &self.unlinks_on_drop())
            .finish()
    }
}

/// Builds a [`Segment`]: set the layout, count and body size, then create, open, or
/// open-or-create.
#[derive(Debug, Clone)]
#[must_use]
pub struct SegmentBuilder {
    name: SegmentName,
    kind: ObjectKind,
    layout: ElementLayout,
    layout_set: bool,
    count: Option<u64>,
    param: u64,
    body_len: Option<usize>,
    mode: u32,
    timeout: Duration,
}

/// What one look at an unpublished segment found.
enum Attempt {
    /// Published and valid: the mapping and its header.
    Ready(os::Mapping, Header),
    /// Not published yet; the creator, if the header names one.
    NotYet(Option<ProcessId>),
}

impl SegmentBuilder {
    /// The element layout: written on create, checked on open (default: `'B'` bytes on create,
    /// not checked on open).
    pub fn layout(mut self, layout: ElementLayout) -> Self {
        self.layout = layout;
        self.layout_set = true;
        self
    }

    /// Element count or capacity: written on create; on open, a different stored count is
    /// [`OpenError::WrongCount`].
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// The kind-specific immutable parameter (create only).
    pub fn param(mut self, param: u64) -> Self {
        self.param = param;
        self
    }

    /// Bytes of body (create only; required).
    pub fn body_len(mut self, len: usize) -> Self {
        self.body_len = Some(len);
        self
    }

    /// Permission bits on create (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// How long an opener waits for the creator to publish (default 5 s). An opener that finds
    /// the creator dead stops waiting at once ([`OpenError::CreatorDied`]).
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Creates the segment exclusively, runs `init` on the zeroed body, then publishes it.
    ///
    /// `init` gets the body's start and length. If it panics, the name is removed again.
    ///
    /// If the name is held by the leftover of a creator that died before publishing, the
    /// leftover is removed and the name taken (see [`crate::inventory`] for the rule).
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] if the name is taken (by a published segment, one whose
    /// creator may still be alive, or a file that is not ours), [`CreateError::NotRegularFile`]
    /// if a FIFO or other non-file has the name, [`CreateError::Invalid`] if no body length was
    /// given, and OS errors.
    pub fn create(self, init: impl FnOnce(NonNull<u8>, usize)) -> Result<Segment, CreateError> {
        let body_len = self.body_len.ok_or_else(|| CreateError::Invalid {
            reason: "no body length given".into(),
        })?;
        let total = (body_len as u64)
            .checked_add(HEADER_SIZE as u64)
            .filter(|&t| t <= isize::MAX as u64)
            .ok_or(CreateError::TooLarge {
                body_len: body_len as u64,
            })?;
        let cname = self.name.to_c_name();
        let file = self.create_file(&cname)?;
        // From here on, a failure or panic removes the name again.
        struct Unlink<'a>(&'a std::ffi::CStr, bool);
        impl Drop for Unlink<'_> {
            fn drop(&mut self) {
                if self.1 {
                    let _ = os::shm_unlink(self.0);
                }
            }
        }
        let mut guard = Unlink(&cname, true);
        #[cfg(feature = "test-hooks")]
        test_hooks::reached(test_hooks::CreateStage::Opened);
        // Marks the segment as in use for as long as this handle lives (a fresh file: nobody
        // else can hold an exclusive lock on it).
        let _ = file.try_lock_shared();
        let id = file
            .stat()
            .map_err(|source| CreateError::Io {
                op: "fstat",
                source,
            })?
            .id;
        file.set_len(total).map_err(|source| CreateError::Io {
            op: "ftruncate",
            source,
        })?;
        #[cfg(feature = "test-hooks")]
        test_hooks::reached(test_hooks::CreateStage::Sized);
        let map = file
            .map(total as usize)
            .map_err(|source| CreateError::Io { op: "mmap", source })?;
        let fields = ImmutableFields::new(
            self.kind,
            &self.layout,
            self.count.unwrap_or(0),
            self.param,
            body_len as u64,
            ProcessId::current(),
        );
        // SAFETY: the mapping is `total` >= HEADER_SIZE bytes, page aligned, and RawHeader is
        // atomics only.
        let raw = unsafe { &*map.as_ptr().cast::<RawHeader>() };
        fields.write(raw);
        // SAFETY: HEADER_SIZE <= total, so the body pointer is inside the mapping.
        let body = unsafe { map.as_ptr().add(HEADER_SIZE) };
        init(NonNull::new(body).unwrap_or(NonNull::dangling()), body_len);
        // SYNC POINT: publishes the header and the initialised body to openers (Acquire).
        raw.state.store(STATE_READY, Ordering::Release);
        guard.1 = false;
        let header = fields
            .validate(
                raw.checksum.load(Ordering::Relaxed),
                total,
                &Expect {
                    kind: Some(self.kind),
                    layout: None,
                    count: None,
                },
            )
            .map_err(|e| CreateError::Invalid {
                reason: e.to_string(),
            })?;
        Ok(Segment {
            name: self.name,
            map,
            _file: file,
            header,
            creator: true,
            persist: AtomicBool::new(false),
            file_id: id,
        })
    }

    /// Takes the name exclusively, reclaiming a dead creator's leftover if one holds it.
    fn create_file(&self, cname: &std::ffi::CStr) -> Result<os::ShmFile, CreateError> {
        // Bounded: each round either creates, reclaims (then the next create usually wins), or
        // gives up; a name that keeps changing under us ends as AlreadyExists.
        for _ in 0..4 {
            match os::shm_create_exclusive(cname, self.mode) {
                Ok(file) => return Ok(file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match inventory::reclaim(&self.name)? {
                        Reclaim::Reclaimed | Reclaim::Vanished => continue,
                        Reclaim::Kept => break,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(CreateError::PermissionDenied {
                        name: self.name.as_str().into(),
                        source: e,
                    })
                }
                Err(source) => {
                    return Err(CreateError::Io {
                        op: "shm_open",
                        source,
                    })
                }
            }
        }
        Err(CreateError::AlreadyExists {
            name: self.name.as_str().into(),
        })
    }

    /// Opens an existing segment, waiting up to the open timeout for its creator to publish it,
    /// and validates kind, layout (if set) and count (if set).
    ///
    /// # Errors
    ///
    /// A specific [`OpenError`] for every way the segment can be missing, foreign, corrupt,
    /// truncated, of another kind or type, or unpublished: [`OpenError::CreatorDied`] as soon
    /// as the header names a creator that died before publishing, [`OpenError::Initialising`]
    /// when the timeout runs out first, [`OpenError::NotRegularFile`] for a FIFO or other
    /// non-file at the name.
    pub fn open(self) -> Result<Segment, OpenError> {
        let deadline = Deadline::after(self.timeout);
        self.open_until(deadline)
    }

    fn open_until(&self, deadline: Deadline) -> Result<Segment, OpenError> {
        let started = crate::sync::now();
        let expect = Expect {
            kind: Some(self.kind),
            layout: self.layout_set.then_some(self.layout),
            count: self.count,
        };
        let mut pause = Duration::from_micros(50);
        let mut file = self.open_locked(deadline)?;
        loop {
            match self.try_open_once(&file, &expect)? {
                Attempt::Ready(map, header) => {
                    let file_id = file
                        .stat()
                        .map_err(|source| OpenError::Io {
                            op: "fstat",
                            source,
                        })?
                        .id;
                    return Ok(Segment {
                        name: self.name.clone(),
                        map,
                        _file: file,
                        header,
                        creator: false,
                        persist: AtomicBool::new(true),
                        file_id,
                    });
                }
                Attempt::NotYet(Some(creator)) if creator.liveness() == Liveness::Dead => {
                    // Gone for good? The name may have been reclaimed and re-created meanwhile;
                    // then the new file is the one to wait for.
                    if self.still_named(&file)? {
                        return Err(OpenError::CreatorDied {
                            name: self.name.as_str().into(),
                            creator,
                        });
                    }
                    file = self.open_locked(deadline)?;
                    continue;
                }
                Attempt::NotYet(_) => {}
            }
            if deadline.has_passed() {
                return Err(OpenError::Initialising {
                    name: self.name.as_str().into(),
                    waited: crate::sync::now().saturating_sub(started),
                });
            }
            std::thread::sleep(pause.min(deadline.remaining().unwrap_or(pause)));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Opens the name (never blocking on a non-file), takes the shared lock that marks a user,
    /// and checks that the name still refers to the file locked (a remover holds the exclusive
    /// lock while it unlinks).
    fn open_locked(&self, deadline: Deadline) -> Result<os::ShmFile, OpenError> {
        let cname = self.name.to_c_name();
        let mut pause = Duration::from_micros(50);
        // A remover holds the exclusive lock for microseconds: even an opener with a zero
        // timeout tries for this long before it calls the segment locked.
        let floor = Deadline::after(Duration::from_millis(20));
        loop {
            let file = os::shm_open(&cname, true).map_err(|e| self.open_failure(e))?;
            let locked = file.try_lock_shared().map_err(|source| OpenError::Io {
                op: "flock",
                source,
            })?;
            if locked && self.still_named(&file)? {
                return Ok(file);
            }
            if deadline.has_passed() && floor.has_passed() {
                return Err(OpenError::Io {
                    op: "flock",
                    source: io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "the segment stayed locked by a remover until the open timeout",
                    ),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    /// Whether the name still refers to `file`.
    fn still_named(&self, file: &os::ShmFile) -> Result<bool, OpenError> {
        let mine = file.stat().map_err(|source| OpenError::Io {
            op: "fstat",
            source,
        })?;
        match os::shm_lstat(self.name.as_str()) {
            Ok(st) => Ok(st.id == mine.id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(OpenError::Io {
                op: "lstat",
                source,
            }),
        }
    }

    /// One attempt: `NotYet` if the creator has not published yet.
    fn try_open_once(&self, file: &os::ShmFile, expect: &Expect) -> Result<Attempt, OpenError> {
        let st = file.stat().map_err(|source| OpenError::Io {
            op: "fstat",
            source,
        })?;
        let len = st.len;
        if len == 0 {
            return Ok(Attempt::NotYet(None)); // created, not yet sized
        }
        if len < HEADER_SIZE as u64 {
            return Err(OpenError::Truncated {
                expected: HEADER_SIZE as u64,
                found: len,
            });
        }
        // Check the header on a pread copy first: no mapping is touched until the creator has
        // published and the file is known to be long enough.
        let mut bytes = [0u8; HEADER_SIZE];
        match file.read_exact_at(&mut bytes, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(OpenError::Truncated {
                    expected: HEADER_SIZE as u64,
                    found: file.stat().map(|s| s.len).unwrap_or(0),
                })
            }
            Err(source) => {
                return Err(OpenError::Io {
                    op: "pread",
                    source,
                })
            }
        }
        let (pre, pre_state, _) = ImmutableFields::from_bytes(&bytes);
        match pre_state {
            STATE_READY => {}
            STATE_INIT if pre.magic == 0 => return Ok(Attempt::NotYet(None)),
            STATE_INIT if pre.magic == MAGIC => {
                return Ok(Attempt::NotYet((pre.creator_pid != 0).then(|| {
                    ProcessId::from_parts(pre.creator_pid, pre.creator_start)
                })))
            }
            _ if pre.magic != MAGIC => {
                return Err(OpenError::NotOurs {
                    found_magic: pre.magic,
                })
            }
            other => return Err(OpenError::BadState { found: other }),
        }
        let map_len = usize::try_from(len).map_err(|_| OpenError::Truncated {
            expected: HEADER_SIZE as u64,
            found: len,
        })?;
        let map = file
            .map(map_len)
            .map_err(|source| OpenError::Io { op: "mmap", source })?;
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked above), page aligned, and
        // RawHeader is made of atomics only.
        let raw = unsafe { &*map.as_ptr().cast::<RawHeader>() };
        // SYNC POINT: pairs with the creator's Release store of READY.
        let state = raw.state.load(Ordering::Acquire);
        let magic = raw.magic.load(Ordering::Relaxed);
        if state != STATE_READY {
            return Err(if magic != MAGIC {
                OpenError::NotOurs { found_magic: magic }
            } else {
                // It was READY a moment ago: somebody rewrote the state word.
                OpenError::BadState { found: state }
            });
        }
        let fields = ImmutableFields::read(raw);
        let header = fields.validate(raw.checksum.load(Ordering::Relaxed), len, expect)?;
        Ok(Attempt::Ready(map, header))
    }

    fn open_failure(&self, e: os::OpenFailure) -> OpenError {
        let e = match e {
            os::OpenFailure::NotRegular(t) => {
                return OpenError::NotRegularFile {
                    name: self.name.as_str().into(),
                    found: t.describe(),
                }
            }
            os::OpenFailure::Io(e) => e,
        };
        match e.kind() {
            io::ErrorKind::NotFound => OpenError::NotFound {
                name: self.name.as_str().into(),
            },
            io::ErrorKind::PermissionDenied => OpenError::PermissionDenied {
                name: self.name.as_str().into(),
                source: e,
            },
            _ => OpenError::Io {
                op: "shm_open",
                source: e,
            },
        }
    }

    /// Opens the segment, or creates it if there is none. Race-free: when several processes
    /// call this at once, exactly one creates and initialises it, the others wait for it to be
    /// published and open it. [`Segment::is_creator`] tells which happened.
    ///
    /// A leftover of a creator that died before publishing is reclaimed (see
    /// [`create`](Self::create)); the whole call is bounded by the open timeout.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`OpenError::Create`] if creating failed for another reason
    /// than the name being taken.
    pub fn open_or_create(
        self,
        init: impl FnOnce(NonNull<u8>, usize),
    ) -> Result<Segment, OpenError> {
        let deadline = Deadline::after(self.timeout);
        let mut init = Some(init);
        let mut round: u32 = 0;
        loop {
            round += 1;
            match self.clone().create(|p, n| {
                if let Some(f) = init.take() {
                    f(p, n)
                }
            }) {
                Ok(seg) => return Ok(seg),
                Err(CreateError::AlreadyExists { .. }) => {}
                Err(e) => return Err(OpenError::Create(e)),
            }
            // Wait for a publisher in short rounds: a leftover without a header may become
            // reclaimable meanwhile (its grace period ends), and the next create takes it.
            let round_deadline = deadline.min_after(inventory::RECLAIM_GRACE / 4);
            let result = self.open_until(round_deadline);
            let retry = matches!(
                result,
                Err(OpenError::NotFound { .. })
                    | Err(OpenError::CreatorDied { .. })
                    | Err(OpenError::Initialising { .. })
            );
            if !retry || deadline.has_passed() {
                return result;
            }
            // Several processes reclaiming the same leftover can keep each other's shared
            // lock up for a moment; back off a little, more each round.
            std::thread::sleep(Duration::from_micros(100) * round.min(50));
        }
    }
}

/// Hooks that let multi-process tests stop a creator at a chosen point of
/// [`SegmentBuilder::create`] (then kill it there). Only with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    use std::sync::Mutex;

    /// A point inside [`SegmentBuilder::create`](super::SegmentBuilder::create).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CreateStage {
        /// The name exists as a 0-byte file; nothing else was done.
        Opened,
        /// The file has its full size (all zeros); no header was written yet.
        Sized,
    }

    type Hook = (CreateStage, fn());
    static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

    /// Makes every later `create` in this process call `hook` when it reaches `stage` (a test
    /// child prints a line there and sleeps until it is killed).
    pub fn on_create_stage(stage: CreateStage, hook: fn()) {
        *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some((stage, hook));
    }

    pub(super) fn reached(stage: CreateStage) {
        let hook = *HOOK.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, f)) = hook {
            if at == stage {
                f();
            }
        }
    }
}
