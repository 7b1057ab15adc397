//! Unit tests on the heap home (run under miri too) and single-process segment tests.

use crate::{Array, CopyError, IndexError, RawArray, StringError};
use shm_core::{CBool, CChar, OpenError, SegmentName};
use std::sync::Arc;

const THREADS: usize = if cfg!(miri) { 2 } else { 4 };
const ITERS: usize = if cfg!(miri) { 20 } else { 5_000 };

shm_core::record! {
    /// Wider than a word: copied as two u64 words and a pair of u32s… as u64 words.
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    struct Point { x: i32, y: i32, w: f64 }

    /// Align 2, size 6: copied as three u16 words.
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    struct Small { a: i16, b: [u8; 2], c: u16 }
}

#[test]
fn element_access_and_errors() {
    let a = RawArray::<i32>::new_from(&[1, 2, 3]);
    let l = Array::<i32>::new_from(&[1, 2, 3]);
    assert_eq!(a.len(), 3);
    assert!(!a.is_empty());
    assert_eq!(a.get(2), Ok(3));
    assert_eq!(l.get(2), Ok(3));
    assert_eq!(a.get(3), Err(IndexError { index: 3, len: 3 }));
    assert_eq!(l.set(7, 0), Err(IndexError { index: 7, len: 3 }));
    assert_eq!(
        a.get(3).unwrap_err().to_string(),
        "index 3 out of range for an array of length 3"
    );
    a.set(0, -1).unwrap();
    l.store(0, -1);
    assert_eq!(a.load(0), -1);
    assert_eq!(l.to_vec(), [-1, 2, 3]);
    assert_eq!(a.fetch_add(1, 10), Ok(2));
    assert_eq!(l.fetch_sub(1, 10), Ok(2));
    assert_eq!(a.fetch_max(2, 100), Ok(3));
    assert_eq!(l.fetch_min(2, -100), Ok(3));
    assert_eq!(a.fetch_or(0, 0), Ok(-1));
    assert_eq!(l.fetch_and(0, 0xff), Ok(-1));
    assert_eq!(l.fetch_xor(0, 0xff), Ok(0xff));
    assert_eq!(a.swap(0, 5), Ok(-1));
    assert_eq!(a.compare_exchange(0, 5, 6), Ok(Ok(5)));
    assert_eq!(l.compare_exchange(0, 5, 6), Ok(Err(0)));
    assert_eq!(a.fetch_update(0, |x| Some(x * 2)), Ok(Ok(6)));
    assert_eq!(a.fetch_add(3, 1), Err(IndexError { index: 3, len: 3 }));
    assert_eq!(a.to_vec(), [12, 12, 100]);
    assert_eq!(l.to_vec(), [0, -8, -100]);
    let empty = Array::<f64>::new(0);
    assert!(empty.is_empty());
    assert_eq!(empty.to_vec(), Vec::<f64>::new());
    assert!(format!("{empty:?} {a:?}").contains("Array"));
}

#[test]
#[should_panic(expected = "out of range")]
fn load_panics_out_of_range() {
    RawArray::<u8>::new(2).load(2);
}

macro_rules! bulk_checks {
    ($a:expr) => {{
        let a = $a;
        assert_eq!(a.copy_from_slice(&[1.0, 2.0, 3.0, 4.0]), Ok(()));
        assert_eq!(
            a.copy_from_slice(&[1.0]),
            Err(CopyError::LengthMismatch {
                expected: 4,
                found: 1
            })
        );
        let mut out = [0.0; 4];
        assert_eq!(a.copy_to_slice(&mut out), Ok(()));
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
        let mut short = [0.0; 3];
        assert!(matches!(
            a.copy_to_slice(&mut short),
            Err(CopyError::LengthMismatch { .. })
        ));
        assert_eq!(a.write_at(2, &[9.0, 8.0]), Ok(()));
        assert_eq!(
            a.write_at(3, &[9.0, 8.0]),
            Err(CopyError::OutOfRange {
                start: 3,
                end: 5,
                len: 4
            })
        );
        assert_eq!(
            a.write_at(usize::MAX, &[1.0]),
            Err(CopyError::OutOfRange {
                start: usize::MAX,
                end: usize::MAX,
                len: 4
            })
        );
        let mut two = [0.0; 2];
        assert_eq!(a.read_at(1, &mut two), Ok(()));
        assert_eq!(two, [2.0, 9.0]);
        assert!(a.read_at(4, &mut two).is_err());
        assert_eq!(a.read_at(4, &mut []), Ok(()));
        assert_eq!(a.to_vec(), [1.0, 2.0, 9.0, 8.0]);
        assert_eq!(a.range_to_vec(1..3), Ok(vec![2.0, 9.0]));
        assert!(a.range_to_vec(3..5).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = a.range_to_vec(3..1);
        assert!(reversed.is_err());
    }};
}

#[test]
fn bulk_copies() {
    bulk_checks!(RawArray::<f64>::new(4));
    bulk_checks!(Array::<f64>::new(4));
    let e = CopyError::LengthMismatch {
        expected: 4,
        found: 1,
    };
    assert!(e.to_string().contains("same size"));
}

#[test]
fn records() {
    let p = Point {
        x: 1,
        y: -2,
        w: 0.25,
    };
    let s = Small {
        a: -3,
        b: [4, 5],
        c: 600,
    };
    let a = RawArray::<Point>::new(3);
    let l = Array::<Point>::new_from(&[p; 2]);
    a.set(2, p).unwrap();
    assert_eq!(a.get(2), Ok(p));
    assert_eq!(a.get(0), Ok(Point::default()));
    assert_eq!(l.lock().unwrap().get(1), Ok(p));
    let small = RawArray::<Small>::new_from(&[s, Small::default(), s]);
    assert_eq!(small.to_vec(), [s, Small::default(), s]);
    small.set(1, s).unwrap();
    assert_eq!(small.get(1), Ok(s));
    let b = RawArray::<CBool>::new_from(&[CBool::TRUE, CBool::FALSE]);
    assert_eq!(b.get(0), Ok(CBool::TRUE));
}

#[test]
fn guard_reads_and_writes_by_copy() {
    let a = Array::<i64>::new_from(&[1, 2, 3]);
    {
        let mut g = a.lock().unwrap();
        assert_eq!(g.to_vec(), [1, 2, 3]);
        assert_eq!((g.len(), g.is_empty()), (3, false));
        g.update(|s| s.reverse());
        g.set(0, g.get(0).unwrap() * 10).unwrap();
        assert_eq!(g.get(3), Err(IndexError { index: 3, len: 3 }));
        assert_eq!(g.set(3, 0), Err(IndexError { index: 3, len: 3 }));
        let mut out = [0; 3];
        g.copy_to_slice(&mut out).unwrap();
        assert_eq!(out, [30, 2, 1]);
        assert!(g.copy_from_slice(&[1]).is_err());
        assert!(!g.is_inconsistent());
        // The lock is re-entrant and guards hold no references: a second guard of the same
        // handle in the same thread is fine.
        let inner = a.try_lock().unwrap();
        assert_eq!(inner.get(0), Ok(30));
        drop(inner);
        // Element operations inside a guard's section are too.
        a.fetch_add(0, 1).unwrap();
        assert_eq!(g.get(0), Ok(31));
        assert!(format!("{g:?}").contains("ArrayGuard"));
    }
    assert_eq!(a.to_vec(), [31, 2, 1]);
    let lock = a.get_lock();
    let held = lock.lock().unwrap();
    a.fetch_add(0, 1).unwrap();
    assert_eq!(a.lock().unwrap().get(0), Ok(32));
    drop(held);
    assert!(!a.is_inconsistent());
}

/// Whether another thread can take `a`'s lock right now (it is not held by this one).
fn free_for_others<T: shm_core::Element>(a: &Array<T>) -> bool {
    std::thread::scope(|s| s.spawn(|| a.try_lock().is_ok()).join().unwrap())
}

/// A guard taken inside `fetch_update`'s closure nests in fetch_update's own level of the
/// lock: after `fetch_update` returns, the guard still holds it, so its slice is exclusive
/// as `as_mut_slice` promises (with only the raw lock under `fetch_update`, its release freed
/// the lock while the guard lived, and another thread could write under the slice).
#[test]
fn a_guard_taken_inside_fetch_update_keeps_the_lock_after_it() {
    let a = Array::<i64>::new_from(&[1, 2]);
    let mut escaped = None;
    let r = a.fetch_update(0, |x| {
        if escaped.is_none() {
            escaped = Some(a.lock().unwrap());
        }
        Some(x + 1)
    });
    assert_eq!(r, Ok(Ok(1)));
    let mut g = escaped.expect("the closure ran");
    assert!(
        !free_for_others(&a),
        "the lock was released while a guard taken in fetch_update's closure lives"
    );
    std::thread::scope(|s| {
        // A writer in another thread waits for the guard.
        let writer = s.spawn(|| a.set(1, 20).unwrap());
        // SAFETY: nothing else in this thread touches the array while `e` lives; the guard
        // keeps the writer thread out.
        let e = unsafe { g.as_mut_slice() };
        e[1] += 1;
        assert_eq!(e[1], 3);
        drop(g);
        writer.join().unwrap();
    });
    assert!(free_for_others(&a));
    assert_eq!(a.to_vec(), [2, 20]);
}

/// An outer guard dropped inside `fetch_update`'s closure releases its level only: the lock
/// stays held until fetch_update returns.
#[test]
fn dropping_the_outer_guard_inside_fetch_update_keeps_the_lock_until_it_returns() {
    let a = Array::<u32>::new(1);
    let mut outer = Some(a.lock().unwrap());
    let mut free_inside = None;
    let r = a.fetch_update(0, |x| {
        drop(outer.take());
        if free_inside.is_none() {
            free_inside = Some(free_for_others(&a));
        }
        Some(x + 1)
    });
    assert_eq!(r, Ok(Ok(0)));
    assert_eq!(
        free_inside,
        Some(false),
        "the lock was free inside fetch_update"
    );
    assert!(free_for_others(&a), "fetch_update released its level");
    assert_eq!(a.get(0), Ok(1));
}

/// Issue 10's aliasing case: a guard of one handle lives while a second handle to the same
/// memory, in the same thread, writes. The lock lets the thread in again (it is
/// re-entrant); what makes this sound is that the guard holds no reference, so every write
/// is seen by the guard's next read. Under miri this is also the aliasing check.
fn two_handles_cannot_alias(a: &Array<i32>, b: &Array<i32>) {
    a.copy_from_slice(&[1, 2, 3]).unwrap();
    let mut g = a.lock().unwrap();
    b.set(0, 10).unwrap();
    assert_eq!(g.get(0), Ok(10));
    b.copy_from_slice(&[4, 5, 6]).unwrap();
    assert_eq!(g.to_vec(), [4, 5, 6]);
    b.write_at(1, &[7]).unwrap();
    // A guard of the second handle, alive together with the first.
    let g2 = b.lock().unwrap();
    g2.set(2, 8).unwrap();
    assert_eq!(g.to_vec(), [4, 7, 8]);
    drop(g2);
    // `update` works on a copy: a write through the other handle inside the closure is
    // overwritten by the copy, never aliased.
    g.update(|s| {
        b.set(0, -1).unwrap();
        s[0] += 100;
    });
    assert_eq!(g.to_vec(), [104, 7, 8]);
    // The unsafe slice, used within its contract (nothing else touches the array meanwhile).
    // SAFETY: no other access to the elements from this thread while `s` lives.
    let s = unsafe { g.as_mut_slice() };
    s[1] = 70;
    assert_eq!(g.get(1), Ok(70));
    // SAFETY: index 2 is in bounds of the 3 elements.
    let p = unsafe { g.as_ptr().add(2) };
    // SAFETY: read while the guard lives, with no slice alive and no other writer.
    assert_eq!(unsafe { p.read() }, 8);
    drop(g);
    assert_eq!(b.to_vec(), [104, 70, 8]);
}

#[test]
fn two_handles_in_one_thread_cannot_alias_on_the_heap() {
    let a = Array::<i32>::new(3);
    let b = a.second_handle();
    two_handles_cannot_alias(&a, &b);
}

#[test]
#[cfg_attr(miri, ignore)] // shm_open
fn two_handles_in_one_thread_cannot_alias_on_a_segment() {
    let name = SegmentName::unique();
    let a = Array::<i32>::create(&name, 3).unwrap();
    let b = Array::<i32>::open(&name).unwrap();
    two_handles_cannot_alias(&a, &b);
}

#[test]
fn guards_of_two_handles_in_two_threads_exclude_each_other() {
    let a = Array::<u64>::new(2);
    let b = a.second_handle();
    std::thread::scope(|s| {
        for h in [&a, &b] {
            s.spawn(move || {
                for _ in 0..ITERS {
                    let mut g = h.lock().unwrap();
                    g.update(|e| {
                        e[0] += 1;
                        e[1] += 2;
                    });
                    // SAFETY: nothing else touches the array in this thread while `e` lives.
                    let e = unsafe { g.as_mut_slice() };
                    e[1] -= 1;
                }
            });
        }
    });
    let n = 2 * ITERS as u64;
    assert_eq!(a.to_vec(), [n, n]);
}

#[test]
fn threads_never_lose_updates() {
    let a = Arc::new(Array::<u64>::new(2));
    let r = Arc::new(RawArray::<u32>::new(1));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (a, r) = (Arc::clone(&a), Arc::clone(&r));
            std::thread::spawn(move || {
                for _ in 0..ITERS {
                    a.fetch_add(0, 1).unwrap();
                    let g = a.lock().unwrap();
                    g.set(1, g.get(1).unwrap() + 1).unwrap();
                    drop(g);
                    r.fetch_add(0, 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = (THREADS * ITERS) as u64;
    assert_eq!(a.to_vec(), [n, n]);
    assert_eq!(r.get(0), Ok(n as u32));
}

#[test]
fn raw_array_readers_race_writers_without_ub() {
    // Under miri this is the data-race check of the element-wise atomic copies.
    let a = Arc::new(RawArray::<Point>::new(4));
    let w = Arc::clone(&a);
    let writer = std::thread::spawn(move || {
        for k in 0..ITERS as i32 {
            w.copy_from_slice(
                &[Point {
                    x: k,
                    y: k,
                    w: k as f64,
                }; 4],
            )
            .unwrap();
        }
    });
    for _ in 0..ITERS {
        for p in a.to_vec() {
            // Each word is one of the written values (tearing across words is possible).
            assert!(p.x >= 0 && p.y >= 0 && p.w >= 0.0);
        }
    }
    writer.join().unwrap();
    let last = (ITERS - 1) as i32;
    assert_eq!(
        a.get(3),
        Ok(Point {
            x: last,
            y: last,
            w: last as f64
        })
    );
}

/// The `'c'` table of SEMANTICS.md section 2.
fn char_semantics(
    set_value: impl Fn(&[u8]) -> Result<(), StringError>,
    set_raw: impl Fn(&[u8]) -> Result<(), StringError>,
    value: impl Fn() -> Vec<u8>,
    raw: impl Fn() -> Vec<u8>,
) {
    // A fresh array is all NUL: .value is empty, .raw is the zeros.
    assert_eq!(value(), b"");
    assert_eq!(raw(), [0u8; 6]);
    // .value = b"hello": the bytes plus one NUL.
    set_value(b"hello").unwrap();
    assert_eq!(value(), b"hello");
    assert_eq!(raw(), b"hello\0");
    // A shorter .value writes bytes plus one NUL and leaves the rest.
    set_value(b"hi").unwrap();
    assert_eq!(value(), b"hi");
    assert_eq!(raw(), b"hi\0lo\0");
    // Exactly the length: no room for a NUL, none written.
    set_value(b"abcdef").unwrap();
    assert_eq!(value(), b"abcdef");
    assert_eq!(raw(), b"abcdef");
    // Too long: an error, nothing written.
    assert_eq!(
        set_value(b"abcdefg"),
        Err(StringError::TooLong {
            len: 7,
            capacity: 6
        })
    );
    assert_eq!(raw(), b"abcdef");
    // .raw = shorter: overwrites the prefix only, no NUL.
    set_raw(b"XY").unwrap();
    assert_eq!(raw(), b"XYcdef");
    // .raw with a NUL inside: .value stops there.
    set_raw(b"a\0b").unwrap();
    assert_eq!(value(), b"a");
    assert_eq!(raw(), b"a\0bdef");
    assert!(set_raw(b"1234567")
        .unwrap_err()
        .to_string()
        .contains("too long"));
    // The empty string: one NUL at the start.
    set_value(b"").unwrap();
    assert_eq!(value(), b"");
    assert_eq!(raw(), b"\0\0bdef");
}

#[test]
fn char_arrays_follow_python() {
    let r = RawArray::<CChar>::new(6);
    char_semantics(
        |s| r.set_value(s),
        |s| r.set_raw(s),
        || r.value(),
        || r.raw(),
    );
    let a = Array::<CChar>::new(6);
    char_semantics(
        |s| a.set_value(s),
        |s| a.set_raw(s),
        || a.value(),
        || a.raw(),
    );
    let zero = Array::<CChar>::new(0);
    assert_eq!(zero.set_value(b""), Ok(()));
    assert!(zero.set_value(b"a").is_err());
}

#[test]
#[cfg_attr(miri, ignore)] // shm_open
fn segments_check_kind_layout_and_length() {
    let name = SegmentName::unique();
    let a = Array::<i32>::create_from(&name, &[1, 2, 3]).unwrap();
    assert_eq!(Array::<i32>::open(&name).unwrap().to_vec(), [1, 2, 3]);
    assert_eq!(Array::<i32>::builder(&name).len(3).open().unwrap().len(), 3);
    assert!(matches!(
        Array::<i32>::builder(&name).len(4).open(),
        Err(OpenError::WrongCount {
            expected: 4,
            found: 3
        })
    ));
    assert!(matches!(
        Array::<u32>::open(&name),
        Err(OpenError::WrongLayout { .. })
    ));
    assert!(matches!(
        Array::<Point>::open(&name),
        Err(OpenError::WrongLayout { .. })
    ));
    assert!(matches!(
        RawArray::<i32>::open(&name),
        Err(OpenError::WrongKind { .. })
    ));
    assert!(matches!(
        Array::<i32>::builder(&name).len(3).create(),
        Err(shm_core::CreateError::AlreadyExists { .. })
    ));
    assert!(matches!(
        Array::<i32>::builder(&SegmentName::unique()).create(),
        Err(shm_core::CreateError::InvalidParameter {
            parameter: "len",
            ..
        })
    ));
    assert!(matches!(
        Array::<i32>::builder(&SegmentName::unique())
            .len(2)
            .values(&[1])
            .create(),
        Err(shm_core::CreateError::InvalidParameter {
            parameter: "len",
            ..
        })
    ));
    assert!(matches!(
        RawArray::<u64>::create(&SegmentName::unique(), usize::MAX / 4),
        Err(shm_core::CreateError::TooLarge { .. })
    ));
    let same = Array::<i32>::builder(&name)
        .len(3)
        .open_or_create()
        .unwrap();
    assert!(!same.segment().unwrap().is_creator());
    assert!(matches!(
        Array::<i32>::builder(&SegmentName::unique()).open_or_create(),
        Err(OpenError::InvalidParameter {
            parameter: "len",
            ..
        })
    ));
    // The knobs, and an opener that states nothing but the type.
    let knobs = SegmentName::unique();
    let k = Array::<u8>::builder(&knobs)
        .values(b"xyz")
        .mode(0o600)
        .wait_strategy(shm_core::WaitStrategy::busy_poll())
        .create()
        .unwrap();
    let o = Array::<u8>::builder(&knobs)
        .open_timeout(std::time::Duration::from_secs(1))
        .open()
        .unwrap();
    assert_eq!(o.to_vec(), b"xyz");
    assert!(format!("{:?}", Array::<u8>::builder(&knobs).len(3)).contains("Builder"));
    drop((a, same, k, o));

    let rec = SegmentName::unique();
    let p = RawArray::<Point>::builder(&rec)
        .len(2)
        .open_or_create()
        .unwrap();
    assert!(p.segment().unwrap().is_creator());
    p.set(0, Point { x: 1, y: 2, w: 3.0 }).unwrap();
    assert_eq!(
        RawArray::<Point>::open(&rec).unwrap().get(0).unwrap().w,
        3.0
    );
    // A record with another layout: "h2BH" is not "iid".
    assert!(matches!(
        RawArray::<Small>::open(&rec),
        Err(OpenError::WrongLayout { .. })
    ));
    // The same 16 bytes as "4i" is not "iid" either.
    assert!(matches!(
        RawArray::<[i32; 4]>::open(&rec),
        Err(OpenError::WrongLayout { .. })
    ));
}

#[test]
fn array_ops_model_agrees_on_random_sequences() {
    // xorshift64*: deterministic inputs for the fuzz target's model.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let rounds = if cfg!(miri) { 3 } else { 300 };
    for _ in 0..rounds {
        let n = (next() % 200) as usize;
        let data: Vec<u8> = (0..n).map(|_| next() as u8 % 70).collect();
        crate::__fuzz::array_ops(&data);
    }
    crate::__fuzz::array_ops(&[]);
    crate::__fuzz::array_ops(&[5, 7, 3, 1, 0, 0, 0]);
}
