//! `Value` and `Array` hot paths, each beside its plain in-process peer in one group so every
//! figure reads as a ratio from one run. Budgets (ARCHITECTURE.md): `Value` atomic ops within
//! 1.1x of a plain atomic; bulk `Array` copies at `memcpy` speed.
//!
//! - `value_fetch_add`: `Value<i64>::fetch_add` and `RawValue<i64>::fetch_add` (real
//!   segments) against `AtomicI64::fetch_add`.
//! - `value_load`: `Value<i64>::load` against `AtomicI64::load`.
//! - `value_update_locked`: `Value<i64>::update(|x| x + 1)` (lock, load, store, unlock) and
//!   the same through a `ValueGuard`, against `std::sync::Mutex<i64>` and
//!   `parking_lot::Mutex<i64>` increments. Budget: `update` within 1.2x of std's `Mutex`.
//! - `array_bulk_8MB` (and `array_bulk_256MB` with `SHM_BENCH_LARGE=1`): `Array<f64>` and
//!   `RawArray<f64>` `copy_from_slice`/`copy_to_slice` against `copy_from_slice` on a `Vec`.
//! - `array_element`: per-element `get`/`set` of `Array<f64>` (takes the lock),
//!   `RawArray<f64>` (one atomic), against indexing a `Vec` through `black_box`.
//!
//! Run: `cargo bench --bench value_array` (measurements), `cargo test --bench value_array`
//! (each once, fast).

use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
use shm_array::{Array, RawArray};
use shm_core::SegmentName;
use shm_value::{RawValue, Value};
use std::sync::atomic::{AtomicI64, Ordering};

fn value_ops(c: &mut Criterion) {
    let v = Value::<i64>::create(&SegmentName::unique(), 0).expect("create value");
    let r = RawValue::<i64>::create(&SegmentName::unique(), 0).expect("create raw value");
    let a = AtomicI64::new(0);

    let mut g = c.benchmark_group("value_fetch_add");
    g.bench_function("shm_value::Value<i64>", |b| {
        b.iter(|| black_box(v.fetch_add(black_box(1))))
    });
    g.bench_function("shm_value::RawValue<i64>", |b| {
        b.iter(|| black_box(r.fetch_add(black_box(1))))
    });
    g.bench_function("std AtomicI64 (SeqCst)", |b| {
        b.iter(|| black_box(a.fetch_add(black_box(1), Ordering::SeqCst)))
    });
    g.finish();

    let mut g = c.benchmark_group("value_load");
    g.bench_function("shm_value::Value<i64>", |b| b.iter(|| black_box(v.load())));
    g.bench_function("std AtomicI64 (SeqCst)", |b| {
        b.iter(|| black_box(a.load(Ordering::SeqCst)))
    });
    g.finish();

    let std_m = std::sync::Mutex::new(0i64);
    let pl_m = parking_lot::Mutex::new(0i64);
    let mut g = c.benchmark_group("value_update_locked");
    g.bench_function("shm_value::Value<i64>::update", |b| {
        b.iter(|| black_box(v.update(|x| x + 1).ok()))
    });
    g.bench_function("shm_value::Value<i64>::lock guard += 1", |b| {
        b.iter(|| {
            if let Ok(g) = v.lock() {
                g.set(g.get() + 1);
            }
        })
    });
    g.bench_function("std::sync::Mutex<i64>", |b| {
        b.iter(|| {
            let mut m = std_m.lock().unwrap();
            *m += 1;
            black_box(*m)
        })
    });
    g.bench_function("parking_lot::Mutex<i64>", |b| {
        b.iter(|| {
            let mut m = pl_m.lock();
            *m += 1;
            black_box(*m)
        })
    });
    g.finish();
}

fn bulk(c: &mut Criterion, label: &str, bytes: usize) {
    let n = bytes / 8;
    let src: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let mut dst = vec![0.0f64; n];
    let mut vec_dst = vec![0.0f64; n];
    let arr = Array::<f64>::create(&SegmentName::unique(), n).expect("create array");
    let raw = RawArray::<f64>::create(&SegmentName::unique(), n).expect("create raw array");

    let mut g = c.benchmark_group(format!("array_bulk_{label}"));
    g.throughput(Throughput::Bytes(bytes as u64));
    if bytes > 64 << 20 {
        g.sample_size(10);
    }
    g.bench_function(BenchmarkId::new("in", "Array<f64>::copy_from_slice"), |b| {
        b.iter(|| arr.copy_from_slice(black_box(&src)).unwrap())
    });
    g.bench_function(
        BenchmarkId::new("in", "RawArray<f64>::copy_from_slice"),
        |b| b.iter(|| raw.copy_from_slice(black_box(&src)).unwrap()),
    );
    g.bench_function(BenchmarkId::new("in", "Vec<f64>::copy_from_slice"), |b| {
        b.iter(|| black_box(&mut vec_dst).copy_from_slice(black_box(&src)))
    });
    g.bench_function(BenchmarkId::new("out", "Array<f64>::copy_to_slice"), |b| {
        b.iter(|| arr.copy_to_slice(black_box(&mut dst)).unwrap())
    });
    g.bench_function(
        BenchmarkId::new("out", "RawArray<f64>::copy_to_slice"),
        |b| b.iter(|| raw.copy_to_slice(black_box(&mut dst)).unwrap()),
    );
    g.bench_function(BenchmarkId::new("out", "Vec<f64>::copy_from_slice"), |b| {
        b.iter(|| black_box(&mut dst).copy_from_slice(black_box(&vec_dst)))
    });
    g.finish();
}

fn bulk_copies(c: &mut Criterion) {
    bulk(c, "8MB", 8 << 20);
    if std::env::var_os("SHM_BENCH_LARGE").is_some_and(|v| v == "1") {
        bulk(c, "256MB", 256 << 20);
    }
}

fn elements(c: &mut Criterion) {
    const N: usize = 1024;
    let arr = Array::<f64>::create(&SegmentName::unique(), N).expect("create array");
    let raw = RawArray::<f64>::create(&SegmentName::unique(), N).expect("create raw array");
    let mut vec = vec![0.0f64; N];
    let mut g = c.benchmark_group("array_element");
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 7) % N;
        i
    };
    g.bench_function("Array<f64>::get (locked)", |b| {
        b.iter(|| black_box(arr.get(black_box(next())).ok()))
    });
    g.bench_function("RawArray<f64>::get", |b| {
        b.iter(|| black_box(raw.get(black_box(next())).ok()))
    });
    g.bench_function("Vec<f64>[i]", |b| {
        b.iter(|| black_box(black_box(&vec)[black_box(next())]))
    });
    g.bench_function("Array<f64>::set (locked)", |b| {
        b.iter(|| arr.set(black_box(next()), 1.5).ok())
    });
    g.bench_function("RawArray<f64>::set", |b| {
        b.iter(|| raw.set(black_box(next()), 1.5).ok())
    });
    g.bench_function("Vec<f64>[i] = x", |b| {
        b.iter(|| black_box(&mut vec)[black_box(next())] = 1.5)
    });
    g.finish();
}

/// The criterion group (in a module of its own: the macro's function has no docs).
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, value_ops, bulk_copies, elements);
}

fn main() {
    group::benches();
    Criterion::default().configure_from_args().final_summary();
}
