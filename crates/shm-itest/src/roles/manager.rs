//! Child roles (of the `shm-itest` binary) for `shm-manager`'s multi-process tests
//! (`tests/manager_processes.rs`). Not meant to be run by hand.
//!
//! Roles (`DICT`, `LIST`, `GO`, `MGR` are segment names):
//!
//! - `manager.insert DICT ID N GO`: waits until the `RawValue<u32>` `GO` is nonzero, then `N`
//!   times: `update("counter", +1)` and `insert("p<ID>-<i>", i)` on a
//!   `SharedDict<String, u64>`.
//! - `manager.churn DICT LIST SEED`: prints `ready`, then forever: random inserts, removes,
//!   updates and clears on a `SharedDict<u32, Vec<u8>>` and pushes, pops, sets, inserts and
//!   reverses on a `SharedList<Vec<u8>>`, every value self-describing ([`pattern`]). Killed
//!   by the test at a random moment.
//! - `manager.crash-at DICT LIST POINT OP`: arms the crash point `POINT` (`committed`,
//!   `applying`, `rebuilt`, `grown`) and runs `OP` (`insert`, `update`, `clear`,
//!   `compact-insert`, `grow-insert`, `push`, `reverse`), which kills the process at that
//!   point. `compact-insert` inserts
//!   `pattern(1000, 43)`, an entry as large as any (127 bytes of value, a 2-byte key).
//! - `manager.open-typed DICT TYPES`: opens the dict as `SharedDict<String, i64>` (`TYPES` =
//!   `string-i64`) or `SharedDict<String, String>` (`string-string`); exit 0 if it opened, 7
//!   on a type mismatch.
//! - `manager.scribble DICT LIST SEED N`: maps both segments as raw bytes and overwrites `N`
//!   pseudo-random bytes of each body past the lock (as a buggy or hostile process would).
//! - `manager.call-everything DICT LIST`: calls every dict and list operation once; any
//!   result is fine, a panic or a hang is not. Exit 0 when all returned.
//! - `manager.mgr-child MGR ID`: opens the manager, increments `dict("data")["count"]`
//!   under the dict's lock, pushes `ID` on `list("ids")`, and takes `lock("l")` once.
//!
//! Exit codes: 0 success, 3 bad arguments, 4 open failed, 5 an operation failed, 6 a crash
//! point was not reached, 7 type mismatch.

use shm_core::{ObjectKind, OpenError, Segment, SegmentName};
use shm_manager::hooks::{crash_at, Point};
use shm_manager::{Manager, SharedDict, SharedList};
use shm_process::Roles;
use shm_value::RawValue;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The value stored for `key` at `version`: its first 8 bytes say (key, version), the rest
/// is a function of both, so a torn or misplaced value is detected.
pub fn pattern(key: u32, version: u32) -> Vec<u8> {
    let len = 8 + (version as usize * 13 + key as usize * 7) % 120;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend((8..len).map(|i| (key as usize * 31 + version as usize * 17 + i) as u8));
    v
}

/// Whether `v` is some `pattern(key, _)`; `key` `None` accepts any key (list elements).
pub fn is_pattern(key: Option<u32>, v: &[u8]) -> bool {
    if v.len() < 8 {
        return false;
    }
    let k = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
    let ver = u32::from_le_bytes([v[4], v[5], v[6], v[7]]);
    key.is_none_or(|key| key == k) && pattern(k, ver) == v
}

/// Capacity and arena of the dicts and lists the crash tests use: small, so that
/// compactions happen often.
pub const CHURN_CAPACITY: u64 = 48;
/// See [`CHURN_CAPACITY`].
pub const CHURN_ARENA: u64 = 48 * 90;

fn name(args: &[String], i: usize) -> Option<SegmentName> {
    SegmentName::new(args.get(i)?).ok()
}

fn num(args: &[String], i: usize) -> Option<u64> {
    args.get(i)?.parse().ok()
}

fn wait_for_go(go: &SegmentName) {
    let Ok(go) = RawValue::<u32>::open(go) else {
        return;
    };
    let start = std::time::Instant::now();
    while go.load() == 0 && start.elapsed() < Duration::from_secs(30) {
        std::thread::yield_now();
    }
}

/// The dict and list the crash roles work on.
type Pair = (SharedDict<u32, Vec<u8>>, SharedList<Vec<u8>>);

fn open_pair(args: &[String]) -> Result<Pair, i32> {
    let (Some(d), Some(l)) = (name(args, 0), name(args, 1)) else {
        eprintln!("bad arguments {args:?}");
        return Err(3);
    };
    match (SharedDict::open(&d), SharedList::open(&l)) {
        (Ok(d), Ok(l)) => Ok((d, l)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("open: {e}");
            Err(4)
        }
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One random operation on the dict and one on the list; `Full` is an expected outcome.
fn churn_step(
    d: &SharedDict<u32, Vec<u8>>,
    l: &SharedList<Vec<u8>>,
    rng: &mut Rng,
) -> Result<(), Box<dyn std::error::Error>> {
    use shm_manager::{IndexError, WriteError};
    let r = rng.next();
    let key = (r >> 8) as u32 % 64;
    let version = (r >> 20) as u32;
    let full_ok = |e: WriteError| match e {
        WriteError::Full(_) => Ok(()),
        e => Err(e),
    };
    match r % 100 {
        0..=49 => d.insert(&key, &pattern(key, version)).or_else(full_ok)?,
        50..=69 => {
            d.remove(&key)?;
        }
        70..=79 => d
            .update(&key, |v| v.map(|_| pattern(key, version)))
            .or_else(full_ok)?,
        80 => d.clear()?,
        81..=89 => l.push(&pattern(key, version)).or_else(full_ok)?,
        90..=93 => {
            l.pop()?;
        }
        94..=96 => match l.set(0, &pattern(key, version)) {
            Ok(()) | Err(IndexError::OutOfRange { .. }) => {}
            Err(IndexError::Write(e)) => full_ok(e)?,
            Err(e) => return Err(e.into()),
        },
        97 | 98 => match l.insert(0, &pattern(key, version)) {
            Ok(()) => {}
            Err(IndexError::Write(e)) => full_ok(e)?,
            Err(e) => return Err(e.into()),
        },
        _ => l.reverse()?,
    }
    Ok(())
}

/// Overwrites `n` pseudo-random bytes past offset 64 of the body of `name` (a `kind`
/// segment), through atomic stores of the words that hold them.
fn scribble(name: &SegmentName, kind: ObjectKind, rng: &mut Rng, n: usize) -> Result<(), i32> {
    let seg = Segment::builder(name, kind).open().map_err(|e| {
        eprintln!("open {name}: {e}");
        4
    })?;
    let (base, len) = (seg.body().as_ptr(), seg.body_len() & !7);
    for _ in 0..n {
        let r = rng.next();
        let off = 64 + (r >> 8) as usize % (len - 64);
        let at = off & !7;
        let shift = 8 * (off & 7);
        // SAFETY: `at + 8 <= len` (len rounded down to a multiple of 8), 8-aligned (the body
        // is 128-aligned), inside the mapping that `seg` keeps alive; AtomicU64 has no invalid
        // bit patterns and may be shared with other processes.
        let word = unsafe { AtomicU64::from_ptr(base.wrapping_add(at).cast()) };
        let old = word.load(Ordering::Relaxed);
        word.store(
            (old & !(0xff << shift)) | ((r >> 48) & 0xff) << shift,
            Ordering::Relaxed,
        );
    }
    Ok(())
}

/// Calls every operation of `d` and `l` once, ignoring the results.
pub fn call_everything(d: &SharedDict<u32, Vec<u8>>, l: &SharedList<Vec<u8>>) {
    let _ = d.get(&1);
    let _ = d.contains_key(&2);
    let _ = d.insert(&3, &pattern(3, 3));
    let _ = d.update(&4, |v| v.map(|_| pattern(4, 4)));
    let _ = d.remove(&5);
    let _ = (d.len(), d.to_vec(), d.keys(), d.snapshot());
    let _ = d.clear();
    let _ = d.insert(&6, &pattern(6, 6));
    let _ = (l.get(0), l.push(&pattern(1, 1)), l.extend(&[pattern(2, 2)]));
    let _ = (l.set(0, &pattern(3, 3)), l.insert(0, &pattern(4, 4)));
    let _ = (
        l.pop(),
        l.pop_at(1),
        l.reverse(),
        l.sort(),
        l.to_vec(),
        l.len(),
    );
    let _ = (l.clear(), l.push(&pattern(5, 5)));
}

/// Registers this module's roles, each named `manager.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("manager.insert", |args| {
            let (Some(dn), Some(id), Some(n), Some(go)) =
                (name(args, 0), num(args, 1), num(args, 2), name(args, 3))
            else {
                eprintln!("bad arguments {args:?}");
                return 3;
            };
            let d = match SharedDict::<String, u64>::open(&dn) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("open: {e}");
                    return 4;
                }
            };
            wait_for_go(&go);
            for i in 0..n {
                let r = d
                    .update("counter", |v| Some(v.unwrap_or(0) + 1))
                    .and_then(|()| d.insert(&format!("p{id}-{i}"), &i));
                if let Err(e) = r {
                    eprintln!("insert: {e}");
                    return 5;
                }
            }
            0
        })
        .role("manager.churn", |args| {
            let (d, l) = match open_pair(args) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let mut rng = Rng(num(args, 2).unwrap_or(1) | 1);
            let mut announced = false;
            loop {
                if let Err(e) = churn_step(&d, &l, &mut rng) {
                    eprintln!("churn: {e}");
                    return 5;
                }
                if !announced {
                    println!("ready");
                    let _ = std::io::stdout().flush();
                    announced = true;
                }
            }
        })
        .role("manager.crash-at", |args| {
            let (d, l) = match open_pair(args) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let point = match args.get(2).map(String::as_str) {
                Some("committed") => Point::Committed,
                Some("applying") => Point::Applying,
                Some("rebuilt") => Point::Rebuilt,
                Some("grown") => Point::Grown,
                _ => return 3,
            };
            crash_at(Some(point));
            let r: Result<(), Box<dyn std::error::Error>> = match args.get(3).map(String::as_str) {
                Some("insert") => d.insert(&1000, &pattern(1000, 1)).map_err(Into::into),
                Some("update") => d.update(&1, |_| Some(pattern(1, 99))).map_err(Into::into),
                Some("clear") => d.clear().map_err(Into::into),
                // The arena has room only after compacting: the insert and the compaction
                // are published together.
                Some("compact-insert") => d.insert(&1000, &pattern(1000, 43)).map_err(Into::into),
                // The dict is growable and full: the insert moves it into a successor.
                Some("grow-insert") => d.insert(&1000, &pattern(1000, 1)).map_err(Into::into),
                Some("push") => l.push(&pattern(7, 7)).map_err(Into::into),
                Some("reverse") => l.reverse().map_err(Into::into),
                _ => return 3,
            };
            eprintln!("crash point not reached: {r:?}");
            6
        })
        .role("manager.scribble", |args| {
            let (Some(dn), Some(ln), Some(seed), Some(n)) =
                (name(args, 0), name(args, 1), num(args, 2), num(args, 3))
            else {
                return 3;
            };
            let mut rng = Rng(seed | 1);
            for (seg, kind) in [(dn, ObjectKind::Dict), (ln, ObjectKind::List)] {
                if let Err(code) = scribble(&seg, kind, &mut rng, n as usize) {
                    return code;
                }
            }
            0
        })
        .role("manager.call-everything", |args| match open_pair(args) {
            Ok((d, l)) => {
                call_everything(&d, &l);
                0
            }
            Err(code) => code,
        })
        .role("manager.open-typed", |args| {
            let Some(dn) = name(args, 0) else {
                return 3;
            };
            let r = match args.get(1).map(String::as_str) {
                Some("string-i64") => SharedDict::<String, i64>::open(&dn).map(drop),
                Some("string-string") => SharedDict::<String, String>::open(&dn).map(drop),
                _ => return 3,
            };
            match r {
                Ok(()) => 0,
                Err(OpenError::Mismatch { field: "type", .. }) => 7,
                Err(e) => {
                    eprintln!("open: {e}");
                    4
                }
            }
        })
        .role("manager.mgr-child", |args| {
            let (Some(mn), Some(id)) = (name(args, 0), num(args, 1)) else {
                return 3;
            };
            let mgr = match Manager::open(&mn) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("open manager: {e}");
                    return 4;
                }
            };
            let run = || -> Result<(), Box<dyn std::error::Error>> {
                let d = mgr.dict::<String, i64>("data")?;
                d.update("count", |v| Some(v.unwrap_or(0) + 1))?;
                mgr.list::<u64>("ids")?.push(&id)?;
                let lock = mgr.lock("l")?;
                drop(lock.lock()?);
                Ok(())
            };
            match run() {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("mgr-child: {e}");
                    5
                }
            }
        })
}
