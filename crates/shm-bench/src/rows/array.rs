//! Array rows: one whole bulk copy into, or out of, an 8 MiB or 256 MiB `f64` array, beside
//! `memcpy` between two `Vec`s and Python's `mp.Array` through a `memoryview`.
//!
//! Each cell allocates its buffers once, touches every page before timing (an untimed
//! copy), times whole copies, and afterwards checks that the data arrived.

use super::{case, python, Case, Group, Kind, Miss, Who, ONE};
use crate::error::BoxError;
use crate::harness::{self, Cfg, Placement};
use shm_array::{Array, RawArray};
use shm_core::SegmentName;
use shm_process::Roles;
use std::hint::black_box;

/// Direction of a copy, seen from the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// From a local slice into the array.
    In,
    /// From the array into a local slice.
    Out,
}

/// One table.
#[derive(Debug, Clone, Copy)]
struct Spec {
    key: &'static str,
    title: &'static str,
    py_case: &'static str,
    dir: Dir,
    bytes: u64,
}

const SPECS: [Spec; 4] = [
    Spec {
        key: "array-in-8M",
        title: "Bulk copy into an 8 MiB f64 array",
        py_case: "array_copy_in_8M",
        dir: Dir::In,
        bytes: 8 << 20,
    },
    Spec {
        key: "array-out-8M",
        title: "Bulk copy out of an 8 MiB f64 array",
        py_case: "array_copy_out_8M",
        dir: Dir::Out,
        bytes: 8 << 20,
    },
    Spec {
        key: "array-in-256M",
        title: "Bulk copy into a 256 MiB f64 array",
        py_case: "array_copy_in_256M",
        dir: Dir::In,
        bytes: 256 << 20,
    },
    Spec {
        key: "array-out-256M",
        title: "Bulk copy out of a 256 MiB f64 array",
        py_case: "array_copy_out_256M",
        dir: Dir::Out,
        bytes: 256 << 20,
    },
];

/// The array tables.
pub fn groups() -> Vec<Group> {
    SPECS
        .iter()
        .map(|s| Group {
            key: s.key,
            area: "array",
            title: s.title,
            op: "one whole copy",
            kind: Kind::Throughput {
                bytes: Some(s.bytes),
            },
            placements: ONE,
        })
        .collect()
}

/// The array cases.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for s in SPECS {
        v.extend([
            case(
                s.key,
                "shm-array Array<f64>",
                Who::Ours,
                "lock held for the copy",
                move |c, p| {
                    harness::pin_to(p.parent_cpu());
                    let mut a = Array::<f64>::create(&SegmentName::unique(), s.bytes as usize / 8)
                        .map_err(|e| format!("creating the array: {e}"))?;
                    measure(c, p, s, &mut a)
                },
            ),
            case(
                s.key,
                "shm-array RawArray<f64>",
                Who::Ours,
                "no lock (element atomics)",
                move |c, p| {
                    harness::pin_to(p.parent_cpu());
                    let mut a =
                        RawArray::<f64>::create(&SegmentName::unique(), s.bytes as usize / 8)
                            .map_err(|e| format!("creating the raw array: {e}"))?;
                    measure(c, p, s, &mut a)
                },
            ),
            case(
                s.key,
                "Vec<f64> copy_from_slice (memcpy)",
                Who::Floor,
                "-",
                move |c, p| {
                    harness::pin_to(p.parent_cpu());
                    let mut a = vec![0.0f64; s.bytes as usize / 8];
                    measure(c, p, s, &mut a)
                },
            ),
            python::line(s.key, "Python mp.Array via memoryview", "-", s.py_case, 1),
        ]);
    }
    v
}

/// The array rows' child roles (none: every row is one process).
pub fn roles(r: Roles) -> Roles {
    r
}

/// What a line copies into and out of.
trait Target {
    fn len(&self) -> usize;
    /// Copies all of `src` in.
    fn put(&mut self, src: &[f64]) -> Result<(), BoxError>;
    /// Copies everything out into `dst`.
    fn get(&mut self, dst: &mut [f64]) -> Result<(), BoxError>;
    /// Element `i` (for the check afterwards).
    fn at(&self, i: usize) -> Result<f64, BoxError>;
}

impl Target for Array<f64> {
    fn len(&self) -> usize {
        Array::len(self)
    }
    fn put(&mut self, src: &[f64]) -> Result<(), BoxError> {
        Ok(self.copy_from_slice(src)?)
    }
    fn get(&mut self, dst: &mut [f64]) -> Result<(), BoxError> {
        Ok(self.copy_to_slice(dst)?)
    }
    fn at(&self, i: usize) -> Result<f64, BoxError> {
        Ok(Array::get(self, i)?)
    }
}

impl Target for RawArray<f64> {
    fn len(&self) -> usize {
        RawArray::len(self)
    }
    fn put(&mut self, src: &[f64]) -> Result<(), BoxError> {
        Ok(self.copy_from_slice(src)?)
    }
    fn get(&mut self, dst: &mut [f64]) -> Result<(), BoxError> {
        Ok(self.copy_to_slice(dst)?)
    }
    fn at(&self, i: usize) -> Result<f64, BoxError> {
        Ok(RawArray::get(self, i)?)
    }
}

/// The floor: `memcpy` between two heap buffers.
impl Target for Vec<f64> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn put(&mut self, src: &[f64]) -> Result<(), BoxError> {
        self.copy_from_slice(src);
        black_box(&mut self[..]);
        Ok(())
    }
    fn get(&mut self, dst: &mut [f64]) -> Result<(), BoxError> {
        dst.copy_from_slice(self);
        black_box(dst);
        Ok(())
    }
    fn at(&self, i: usize) -> Result<f64, BoxError> {
        self.as_slice()
            .get(i)
            .copied()
            .ok_or_else(|| format!("index {i} out of range").into())
    }
}

/// The data: distinct, non-zero, exactly representable values.
fn pattern(i: usize) -> f64 {
    (i % 65_521) as f64 + 0.5
}

/// The elements checked after a run: both ends, and a few in between.
fn probes(n: usize) -> [usize; 5] {
    [0, 1, n / 3, n / 2 + 7, n - 1]
}

/// Times whole copies into or out of `t` (ns per copy), then checks the data.
fn measure<T: Target>(cfg: &Cfg, _p: Placement, s: Spec, t: &mut T) -> Result<Vec<f64>, Miss> {
    let n = t.len();
    if n < 16 || n as u64 * 8 != s.bytes {
        return Err(Miss::Failed(format!(
            "the target holds {n} elements, expected {}",
            s.bytes / 8
        )));
    }
    // Every page of the local buffer is written here, every page of the target by the
    // untimed first copy.
    let mut local: Vec<f64> = (0..n).map(pattern).collect();
    match s.dir {
        Dir::In => {
            t.put(&local)?;
            // Element 0 changes every copy, so that the check sees the last one arrive.
            let mut k = 0u64;
            let samples = harness::per_op(cfg, || {
                k += 1;
                local[0] = k as f64;
                t.put(&local)
            })?;
            for i in probes(n) {
                let want = if i == 0 { k as f64 } else { pattern(i) };
                let got = t.at(i)?;
                if got != want {
                    return Err(Miss::Failed(format!(
                        "after the copies in, element {i} is {got}, expected {want}"
                    )));
                }
            }
            Ok(samples)
        }
        Dir::Out => {
            t.put(&local)?;
            local.fill(-1.0);
            t.get(&mut local)?;
            // Element 0 of the destination is spoiled before every copy, so that the check
            // sees the last one arrive.
            let samples = harness::per_op(cfg, || {
                local[0] = -1.0;
                t.get(&mut local)
            })?;
            for i in probes(n) {
                if local[i] != pattern(i) {
                    return Err(Miss::Failed(format!(
                        "after the copies out, element {i} is {}, expected {}",
                        local[i],
                        pattern(i)
                    )));
                }
            }
            Ok(samples)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn specs_name_their_python_cases() {
        for s in SPECS {
            assert!(s
                .py_case
                .ends_with(if s.bytes == 8 << 20 { "_8M" } else { "_256M" }));
            assert_eq!(s.py_case.contains("_in_"), s.dir == Dir::In);
        }
    }

    /// A target that drops every write: the check after the run must catch it.
    struct Lossy(Vec<f64>);

    impl Target for Lossy {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn put(&mut self, _: &[f64]) -> Result<(), BoxError> {
            Ok(())
        }
        fn get(&mut self, _: &mut [f64]) -> Result<(), BoxError> {
            Ok(())
        }
        fn at(&self, i: usize) -> Result<f64, BoxError> {
            Ok(self.0[i])
        }
    }

    #[test]
    fn copies_are_checked() {
        let cfg = Cfg {
            samples: 10,
            max_time: Duration::from_millis(1),
            warmup: Duration::ZERO,
            ..Cfg::quick()
        };
        let small = Spec {
            bytes: 64 * 8,
            ..SPECS[0]
        };
        for dir in [Dir::In, Dir::Out] {
            let s = Spec { dir, ..small };
            let mut a = Array::<f64>::new(64);
            assert!(measure(&cfg, Placement::Single, s, &mut a).is_ok());
            let mut r = RawArray::<f64>::new(64);
            assert!(measure(&cfg, Placement::Single, s, &mut r).is_ok());
            let mut v = vec![0.0; 64];
            assert!(measure(&cfg, Placement::Single, s, &mut v).is_ok());
            let mut lossy = Lossy(vec![0.0; 64]);
            assert!(matches!(
                measure(&cfg, Placement::Single, s, &mut lossy),
                Err(Miss::Failed(_))
            ));
        }
    }
}
