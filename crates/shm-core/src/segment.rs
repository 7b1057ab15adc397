//! Named shared-memory segments: create, open, open-or-create, unlink, list.

use crate::error::{CreateError, OpenError};
use crate::header::{
    Expect, Header, ImmutableFields, ObjectKind, RawHeader, HEADER_SIZE, MAGIC, STATE_INIT,
    STATE_READY,
};
use crate::name::SegmentName;
use crate::os;
use crate::sync::atomic::Ordering;
use crate::sync::Deadline;
use crate::typecode::{ElementLayout, TypeCode};
use crate::ProcessId;
use memmap2::{MmapOptions, MmapRaw};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
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
/// See the [crate docs](crate) for an example.
pub struct Segment {
    name: SegmentName,
    map: MmapRaw,
    header: Header,
    creator: bool,
    persist: AtomicBool,
    /// (device, inode) of the file this handle mapped: the drop of a creator's handle unlinks
    /// the name only while it still refers to this file.
    file_id: (u64, u64),
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
        // SAFETY: the mapping is at least HEADER_SIZE + body_len bytes long (checked on create
        // and open), so the offset stays inside it.
        let p = unsafe { self.map.as_mut_ptr().add(HEADER_SIZE) };
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

    /// Removes the name now. Processes that have the segment mapped keep using it; new opens
    /// fail with `NotFound`. This handle will not unlink again on drop.
    ///
    /// # Errors
    ///
    /// The OS error, for example `NotFound` if somebody removed it already.
    pub fn unlink(&self) -> io::Result<()> {
        self.persist
            .store(true, std::sync::atomic::Ordering::Relaxed);
        os::shm_unlink(&self.name.to_c_name())
    }

    /// Removes the segment called `name` without opening it (for cleaning up after a crash).
    ///
    /// # Errors
    ///
    /// The OS error, `NotFound` if there is none.
    pub fn unlink_name(name: &SegmentName) -> io::Result<()> {
        os::shm_unlink(&name.to_c_name())
    }

    /// Whether a segment called `name` exists.
    pub fn exists(name: &SegmentName) -> bool {
        os::shm_open_ro(&name.to_c_name()).is_ok()
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

impl Drop for Segment {
    fn drop(&mut self) {
        if self.unlinks_on_drop() {
            // Only if the name still refers to our file: somebody may have unlinked it and
            // created a successor under the same name, which is not ours to remove. (A new
            // file could still appear between this check and the unlink; that window is a few
            // microseconds instead of the whole life of the handle.)
            let cname = self.name.to_c_name();
            if let Ok(file) = os::shm_open_ro(&cname) {
                if file_id(&file).ok() == Some(self.file_id) {
                    let _ = os::shm_unlink(&cname);
                }
            }
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

    /// The old name of [`open_timeout`](Self::open_timeout), kept until every caller moved.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.open_timeout(timeout)
    }

    /// Creates the segment exclusively, runs `init` on the zeroed body, then publishes it.
    ///
    /// `init` gets the body's start and length. If it panics, the name is removed again.
    ///
    /// # Errors
    ///
    /// [`CreateError::AlreadyExists`] if the name is taken, [`CreateError::Invalid`] if no body
    /// length was given, and OS errors.
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
        let file = os::shm_create_exclusive(&cname, self.mode).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => CreateError::AlreadyExists {
                name: self.name.as_str().into(),
            },
            io::ErrorKind::PermissionDenied => CreateError::PermissionDenied {
                name: self.name.as_str().into(),
                source: e,
            },
            _ => CreateError::Io {
                op: "shm_open",
                source: e,
            },
        })?;
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
        let id = file_id(&file).map_err(|source| CreateError::Io {
            op: "fstat",
            source,
        })?;
        file.set_len(total).map_err(|source| CreateError::Io {
            op: "ftruncate",
            source,
        })?;
        let map = MmapOptions::new()
            .len(total as usize)
            .map_raw(&file)
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
        let body = unsafe { map.as_mut_ptr().add(HEADER_SIZE) };
        init(NonNull::new(body).unwrap_or(NonNull::dangling()), body_len);
        // SYNC POINT: publishes the header and the initialised body to openers (Acquire).
        raw.state.store(STATE_READY, Ordering::Release);
        guard.1 = false;
        let header = fields
            .validate(
                raw.checksum.load(Ordering::Relaxed),
                total,
                &Expect {
                    kind: self.kind,
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
            header,
            creator: true,
            persist: AtomicBool::new(false),
            file_id: id,
        })
    }

    /// Opens an existing segment, waiting up to the timeout for its creator to publish it, and
    /// validates kind, layout (if set) and count (if set).
    ///
    /// # Errors
    ///
    /// A specific [`OpenError`] for every way the segment can be missing, foreign, corrupt,
    /// truncated, of another kind or type, or unpublished.
    pub fn open(self) -> Result<Segment, OpenError> {
        let deadline = Deadline::after(self.timeout);
        let started = crate::sync::now();
        let cname = self.name.to_c_name();
        let file = os::shm_open_rw(&cname).map_err(|e| self.open_io_error(e))?;
        let expect = Expect {
            kind: self.kind,
            layout: self.layout_set.then_some(self.layout),
            count: self.count,
        };
        let mut pause = Duration::from_micros(50);
        loop {
            if let Some(seg) = self.try_open_once(&file, &expect)? {
                return Ok(seg);
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

    /// One attempt: `Ok(None)` if the creator has not published yet.
    fn try_open_once(&self, file: &File, expect: &Expect) -> Result<Option<Segment>, OpenError> {
        let len = file_len(file)?;
        if len == 0 {
            return Ok(None); // created, not yet sized
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
                    found: file_len(file)?,
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
            STATE_INIT if pre.magic == 0 || pre.magic == MAGIC => return Ok(None),
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
        let map = MmapOptions::new()
            .len(map_len)
            .map_raw(file)
            .map_err(|source| OpenError::Io { op: "mmap", source })?;
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked above), page aligned, and
        // RawHeader is made of atomics only.
        let raw = unsafe { &*map.as_ptr().cast::<RawHeader>() };
        // SYNC POINT: pairs with the creator's Release store of READY.
        let state = raw.state.load(Ordering::Acquire);
        let magic = raw.magic.load(Ordering::Relaxed);
        match state {
            STATE_READY => {}
            STATE_INIT if magic == 0 || magic == MAGIC => return Ok(None),
            _ if magic != MAGIC => return Err(OpenError::NotOurs { found_magic: magic }),
            other => return Err(OpenError::BadState { found: other }),
        }
        let fields = ImmutableFields::read(raw);
        let header = fields.validate(raw.checksum.load(Ordering::Relaxed), len, expect)?;
        Ok(Some(Segment {
            name: self.name.clone(),
            map,
            header,
            creator: false,
            persist: AtomicBool::new(true),
            file_id: file_id(file).map_err(|source| OpenError::Io {
                op: "fstat",
                source,
            })?,
        }))
    }

    fn open_io_error(&self, e: io::Error) -> OpenError {
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
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`OpenError::Create`] if creating failed for another reason
    /// than the name being taken.
    pub fn open_or_create(
        self,
        init: impl FnOnce(NonNull<u8>, usize),
    ) -> Result<Segment, OpenError> {
        let mut init = Some(init);
        // Bounded: each round either creates, opens, or sees the name vanish in between.
        for _ in 0..100 {
            match self.clone().create(|p, n| {
                if let Some(f) = init.take() {
                    f(p, n)
                }
            }) {
                Ok(seg) => return Ok(seg),
                Err(CreateError::AlreadyExists { .. }) => {}
                Err(e) => return Err(OpenError::Create(e)),
            }
            match self.clone().open() {
                Err(OpenError::NotFound { .. }) => continue, // unlinked in between: retry
                other => return other,
            }
        }
        Err(OpenError::NotFound {
            name: self.name.as_str().into(),
        })
    }
}

fn file_id(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

fn file_len(file: &File) -> Result<u64, OpenError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|source| OpenError::Io {
            op: "fstat",
            source,
        })
}

/// A summary of one segment in the shm namespace, as [`list_segments`] finds it.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// The name.
    pub name: SegmentName,
    /// The file size.
    pub file_len: u64,
    /// Whether the creator published it.
    pub ready: bool,
    /// The object kind, if known.
    pub kind: Option<ObjectKind>,
    /// The element layout's format string as stored (may be garbage in a corrupt segment).
    pub format: String,
    /// Element count or capacity.
    pub count: u64,
    /// Who created it.
    pub creator: ProcessId,
    /// Whether the creator is still running.
    pub creator_alive: bool,
}

impl SegmentInfo {
    /// Removes this segment's name.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn unlink(&self) -> io::Result<()> {
        Segment::unlink_name(&self.name)
    }
}

/// Lists the shm-ipc segments in the shm namespace (files that start with our magic number and
/// are at least a header long), with a summary of each header and whether its creator lives.
///
/// Segments whose creator is dead are candidates for removal with [`SegmentInfo::unlink`]:
/// either persisted on purpose, or left by a crash.
///
/// # Errors
///
/// If the namespace cannot be read. Files that cannot be opened or are not ours are skipped.
pub fn list_segments() -> io::Result<Vec<SegmentInfo>> {
    let mut out = Vec::new();
    for bare in os::shm_names()? {
        let Ok(name) = SegmentName::new(&bare) else {
            continue;
        };
        let Ok(file) = os::shm_open_ro(&name.to_c_name()) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if meta.len() < HEADER_SIZE as u64 {
            continue;
        }
        // Read a copy with pread rather than through a mapping: a file truncated under us then
        // gives a short read, not SIGBUS.
        let mut bytes = [0u8; HEADER_SIZE];
        if file.read_exact_at(&mut bytes, 0).is_err() {
            continue;
        }
        let (f, state, _checksum) = ImmutableFields::from_bytes(&bytes);
        if f.magic != MAGIC {
            continue;
        }
        let end = f
            .format
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(f.format.len());
        let creator = ProcessId::from_parts(f.creator_pid, f.creator_start);
        out.push(SegmentInfo {
            name,
            file_len: meta.len(),
            ready: state == STATE_READY,
            kind: ObjectKind::from_u32(f.kind),
            format: String::from_utf8_lossy(&f.format[..end]).into_owned(),
            count: f.count,
            creator,
            creator_alive: creator.is_alive(),
        });
    }
    Ok(out)
}
