//! `inspect`: the header of one segment and the live state of its object, as ordered fields.
//!
//! Reading live state never blocks and never takes anything over: locks are looked at with
//! snapshots, values with atomic loads, and a locked `Array`'s elements are shown only while
//! its lock is free.

use super::model::{Creator, Entry};
use super::source::CliError;
use serde_json::{json, Value as Json};
use shm_core::{CBool, CChar, ElementLayout, ObjectKind, Segment, SegmentName, TypeCode, WChar};
use std::time::Duration;

/// Ordered `(key, value)` pairs: printed as `key: value` lines or as one JSON object.
pub(crate) type Fields = Vec<(&'static str, Json)>;

/// How long inspect waits for a segment that is being published.
const OPEN_TIMEOUT: Duration = Duration::from_millis(300);

/// Opens `$ty` named `$name` without waiting long; a failure is "no such segment" (removed
/// since the listing) or a corrupt segment.
macro_rules! open {
    ($ty:ty, $name:expr) => {
        <$ty>::builder($name)
            .open_timeout(OPEN_TIMEOUT)
            .open()
            .map_err(|e| open_failed($name, e))?
    };
}

/// How many elements of an array are shown.
const MAX_ELEMENTS: usize = 16;

/// The liveness of a lock holder's thread word or a role holder's process word.
pub(crate) fn word_liveness(word: u64) -> shm_core::Liveness {
    shm_core::ProcessId::word_liveness(word)
}

/// An element shown as JSON.
trait Show: Copy {
    fn show(self) -> Json;
}

macro_rules! show_number {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn show(self) -> Json {
                json!(self)
            }
        }
    )*};
}
show_number!(i8, u8, i16, u16, i32, u32, i64, u64);

impl Show for f32 {
    fn show(self) -> Json {
        f64::from(self).show()
    }
}

impl Show for f64 {
    fn show(self) -> Json {
        // JSON has no NaN or infinities: those become strings.
        serde_json::Number::from_f64(self)
            .map(Json::Number)
            .unwrap_or_else(|| Json::String(self.to_string()))
    }
}

impl Show for CChar {
    fn show(self) -> Json {
        Json::String(std::ascii::escape_default(self.0).to_string())
    }
}

impl Show for WChar {
    fn show(self) -> Json {
        match char::from_u32(self.0) {
            Some(c) => Json::String(c.to_string()),
            None => Json::String(format!("\\u{{{:x}}}", self.0)),
        }
    }
}

impl Show for CBool {
    fn show(self) -> Json {
        Json::Bool(self.0 != 0)
    }
}

/// Runs `$body` with `$T` bound to the Rust type of typecode `$tc`.
macro_rules! with_typecode {
    ($tc:expr, $T:ident => $body:expr) => {
        match $tc {
            TypeCode::Char => {
                type $T = CChar;
                $body
            }
            TypeCode::Byte => {
                type $T = i8;
                $body
            }
            TypeCode::UByte => {
                type $T = u8;
                $body
            }
            TypeCode::Short => {
                type $T = i16;
                $body
            }
            TypeCode::UShort => {
                type $T = u16;
                $body
            }
            TypeCode::Int => {
                type $T = i32;
                $body
            }
            TypeCode::UInt => {
                type $T = u32;
                $body
            }
            TypeCode::Long | TypeCode::LongLong => {
                type $T = i64;
                $body
            }
            TypeCode::ULong | TypeCode::ULongLong => {
                type $T = u64;
                $body
            }
            TypeCode::Float => {
                type $T = f32;
                $body
            }
            TypeCode::Double => {
                type $T = f64;
                $body
            }
            TypeCode::WChar => {
                type $T = WChar;
                $body
            }
            TypeCode::Bool => {
                type $T = CBool;
                $body
            }
        }
    };
}

/// An open that failed after the listing found the segment: gone meanwhile, or corrupt.
pub(crate) fn open_failed(name: &SegmentName, e: shm_core::OpenError) -> CliError {
    match e {
        shm_core::OpenError::NotFound { .. } => CliError::NotFound {
            name: name.as_str().into(),
        },
        other => corrupt(name, other),
    }
}

fn corrupt(name: &SegmentName, e: impl std::fmt::Display) -> CliError {
    CliError::Corrupt {
        name: name.as_str().into(),
        reason: e.to_string(),
    }
}

/// Header fields of a validated segment.
pub(crate) fn header_fields(entry: &Entry, seg: &Segment) -> Fields {
    let h = seg.header();
    let layout = h.layout();
    let mut f: Fields = vec![
        ("name", json!(entry.name)),
        ("kind", json!(h.kind().to_string())),
        ("state", json!(super::model::state_word(&entry.state))),
    ];
    if super::model::has_elements(h.kind()) {
        match single_typecode(layout) {
            Some(tc) => {
                f.push(("typecode", json!(tc.as_char().to_string())));
                f.push(("ctype", json!(tc.ctype_name())));
            }
            _ => f.push(("format", json!(layout.format()))),
        }
        f.push(("element_size", json!(layout.size())));
        f.push(("element_align", json!(layout.align())));
    }
    f.extend([
        ("count", json!(h.count())),
        ("param", json!(h.param())),
        ("body_len", json!(h.body_len())),
        ("total_size", json!(h.total_size())),
        ("file_size", json!(entry.size)),
        ("creator_pid", json!(h.creator().pid())),
        ("creator_start_time", json!(h.creator().start_time())),
    ]);
    if let Some(Creator { liveness, .. }) = entry.creator {
        f.push((
            "creator",
            json!(liveness.map_or("unknown".into(), |l| l.to_string())),
        ));
    }
    f
}

/// What a lock looks like right now: a few relaxed loads, never a lock operation.
#[derive(Debug, Clone, Copy)]
struct LockView {
    /// The holder's thread identity word, `None` when free.
    holder: Option<u64>,
    /// A holder died and nobody marked the state consistent since.
    inconsistent: bool,
}

/// A snapshot of a robust lock: its owner word (the holder's thread identity, 0 when free)
/// and its inconsistent flag. Two loads; nothing is locked or taken over.
fn lock_view(raw: &shm_lock::RawLock) -> LockView {
    use shm_lock::RawRobustLock;
    let owner = raw.owner_word();
    LockView {
        holder: (owner != 0).then_some(owner),
        inconsistent: raw.is_inconsistent(),
    }
}

/// A lock's state as fields, with the holder's liveness; `prefix` is `""` for a lock object
/// and `"lock_"` for the lock embedded in another object.
fn lock_fields(prefix: &'static str, s: LockView, f: &mut Fields) {
    let (holder, thread, inconsistent) = if prefix.is_empty() {
        ("holder", "holder_thread", "inconsistent")
    } else {
        ("lock_holder", "lock_holder_thread", "lock_inconsistent")
    };
    match s.holder {
        None => f.push((holder, json!("free"))),
        Some(word) => {
            f.push((thread, json!(word as u32)));
            f.push((holder, json!(word_liveness(word).to_string())));
        }
    }
    f.push((inconsistent, json!(s.inconsistent)));
}

fn value_fields<T: shm_core::AtomicElement + Show>(
    name: &SegmentName,
    locked: bool,
    f: &mut Fields,
) -> Result<(), CliError> {
    if locked {
        let v = open!(shm_value::Value<T>, name);
        f.push(("value", v.load().show()));
        lock_fields("lock", lock_view(v.get_lock().state().raw()), f);
    } else {
        let v = open!(shm_value::RawValue<T>, name);
        f.push(("value", v.load().show()));
    }
    Ok(())
}

fn array_fields<T: shm_core::AtomicElement + Show>(
    name: &SegmentName,
    locked: bool,
    f: &mut Fields,
) -> Result<(), CliError> {
    let shown = |len: usize, get: &dyn Fn(usize) -> Option<T>| -> Json {
        Json::Array(
            (0..len.min(MAX_ELEMENTS))
                .map_while(get)
                .map(Show::show)
                .collect(),
        )
    };
    let (len, elements, snapshot) = if locked {
        let a = open!(shm_array::Array<T>, name);
        let lock = a.get_lock();
        let snapshot = lock_view(lock.state().raw());
        // Elements are read under the lock, and only if it is free: never wait, never take
        // over a dead holder's lock.
        let mut elements = json!("not read: the lock is held");
        if snapshot.inconsistent {
            elements = json!("not read: a holder died and nobody has marked the array consistent");
        } else if snapshot.holder.is_none() {
            if let Ok(guard) = lock.try_lock() {
                elements = shown(a.len(), &|i| a.get(i).ok());
                drop(guard);
            }
        }
        (a.len(), elements, Some(snapshot))
    } else {
        let a = open!(shm_array::RawArray<T>, name);
        (a.len(), shown(a.len(), &|i| a.get(i).ok()), None)
    };
    f.push(("len", json!(len)));
    f.push(("elements", elements));
    if len > MAX_ELEMENTS {
        f.push(("elements_shown", json!(MAX_ELEMENTS)));
    }
    if let Some(s) = snapshot {
        lock_fields("lock", s, f);
    }
    Ok(())
}

/// A queue snapshot as fields, with each role holder's liveness.
fn queue_fields(s: shm_queue::QueueSnapshot, f: &mut Fields) {
    let holders = |words: &[u64]| -> Json {
        Json::Array(
            words
                .iter()
                .map(|&w| {
                    json!({
                        "pid": shm_core::ProcessId::from_word(w).pid(),
                        "liveness": word_liveness(w).to_string(),
                    })
                })
                .collect(),
        )
    };
    f.push(("len", json!(s.len)));
    f.push(("capacity", json!(s.capacity)));
    f.push(("closed", json!(s.closed)));
    f.push(("poisoned", json!(s.poisoned)));
    f.push(("producers", holders(&s.producers)));
    f.push(("consumers", holders(&s.consumers)));
}

fn typed_queue_fields<T: shm_core::Element>(
    name: &SegmentName,
    mpmc: bool,
    f: &mut Fields,
) -> Result<(), CliError> {
    let snapshot = if mpmc {
        open!(shm_queue::MpmcQueue<T>, name).snapshot()
    } else {
        open!(shm_queue::SpscQueue<T>, name).snapshot()
    };
    queue_fields(snapshot, f);
    Ok(())
}

/// The live state of the object in `seg`.
///
/// The primitives' crates answer every bit pattern in a segment with a value or an error; if
/// one of them panicked on a hostile segment anyway, that is reported as a corrupt segment
/// (exit code 1) rather than a crash of the tool.
pub(crate) fn live_fields(name: &SegmentName, seg: &Segment) -> Result<Fields, CliError> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| read_live(name, seg));
    std::panic::set_hook(quiet);
    r.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(corrupt(name, format!("its state cannot be read ({msg})")))
    })
}

/// The typecode of a layout that is one typecode element (not a record of several fields).
fn single_typecode(layout: ElementLayout) -> Option<TypeCode> {
    layout.typecode().filter(|_| layout.format().len() == 1)
}

fn read_live(name: &SegmentName, seg: &Segment) -> Result<Fields, CliError> {
    let h = seg.header();
    let mut f = Fields::new();
    let typecode = |layout: ElementLayout| {
        single_typecode(layout).ok_or_else(|| {
            corrupt(
                name,
                format!("a {} must hold a single typecode, found {layout}", h.kind()),
            )
        })
    };
    match h.kind() {
        ObjectKind::Lock => {
            let l = open!(shm_lock::Lock, name);
            lock_fields("", lock_view(l.as_ref().raw()), &mut f);
        }
        ObjectKind::RLock => {
            let l = open!(shm_lock::RLock, name);
            lock_fields("", lock_view(l.as_ref().state().raw()), &mut f);
        }
        ObjectKind::Semaphore => {
            let s = open!(shm_lock::Semaphore, name);
            f.push(("value", json!(s.value())));
        }
        ObjectKind::BoundedSemaphore => {
            let s = open!(shm_lock::BoundedSemaphore, name);
            f.push(("value", json!(s.value())));
        }
        ObjectKind::Event => {
            let e = open!(shm_lock::Event, name);
            f.push(("set", json!(e.is_set())));
        }
        ObjectKind::Condition => {
            let c = open!(shm_lock::Condition, name);
            lock_fields("lock", lock_view(c.lock_ref().state().raw()), &mut f);
        }
        ObjectKind::Barrier => {
            let b = open!(shm_lock::Barrier, name);
            f.push(("parties", json!(b.parties())));
            f.push(("waiting", json!(b.n_waiting())));
            f.push(("broken", json!(b.is_broken())));
        }
        ObjectKind::Value | ObjectKind::RawValue => {
            let locked = h.kind() == ObjectKind::Value;
            with_typecode!(typecode(h.layout())?, T => value_fields::<T>(name, locked, &mut f))?;
        }
        ObjectKind::Array | ObjectKind::RawArray => {
            let locked = h.kind() == ObjectKind::Array;
            match single_typecode(h.layout()) {
                Some(tc) => with_typecode!(tc, T => array_fields::<T>(name, locked, &mut f))?,
                // A record layout: its fields have no Rust type here; show the length only.
                None => f.push(("len", json!(h.count()))),
            }
        }
        ObjectKind::SpscQueue | ObjectKind::MpmcQueue => {
            let mpmc = h.kind() == ObjectKind::MpmcQueue;
            match single_typecode(h.layout()) {
                Some(tc) => with_typecode!(tc, T => typed_queue_fields::<T>(name, mpmc, &mut f))?,
                // Records have no Rust type here: the header has the capacity.
                None => f.push(("capacity", json!(h.count()))),
            }
        }
        ObjectKind::SpscBytes | ObjectKind::MpmcBytes => {
            // The opener adopts the flavor (SPSC or MPMC) from the header.
            let q = open!(shm_queue::bytes::ByteQueue, name);
            f.push(("max_message", json!(q.max_message())));
            queue_fields(q.snapshot(), &mut f);
        }
        ObjectKind::JoinableQueue => {
            let q = open!(shm_queue::joinable::JoinableQueue, name);
            f.push(("len", json!(q.len())));
        }
        _ => {}
    }
    Ok(f)
}
