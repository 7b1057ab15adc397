//! Measuring: configuration, pinning, timed loops, statistics, and child processes.

use crate::error::Failure;
use shm_core::{ObjectKind, Segment, SegmentName};
use shm_process::Process;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long and how often to measure.
#[derive(Debug, Clone)]
pub struct Cfg {
    /// Quick mode (CI): few iterations, numbers not meant to be quoted.
    pub quick: bool,
    /// Most samples of a latency cell.
    pub samples: usize,
    /// Most time spent measuring one cell (after warm-up).
    pub max_time: Duration,
    /// Warm-up time of a cell.
    pub warmup: Duration,
    /// Most batches of a throughput cell.
    pub batches: usize,
    /// Whether to run the Python rows.
    pub python: bool,
    /// Whether to print per-cell progress.
    pub verbose: bool,
    /// Interleaved rounds per cell (samples and time are split between them).
    pub rounds: usize,
    /// Sub-rounds per round of the lines of a budget ratio ([`Case::fine`]): such a line is
    /// measured `rounds × fine` times, briefly, each time beside the other lines of its table.
    ///
    /// [`Case::fine`]: crate::rows::Case::fine
    pub fine: usize,
}

impl Cfg {
    /// The full configuration: numbers meant to be quoted.
    pub fn full() -> Cfg {
        Cfg {
            quick: false,
            samples: 300_000,
            max_time: Duration::from_secs(3),
            warmup: Duration::from_millis(200),
            batches: 120,
            python: true,
            verbose: true,
            rounds: 3,
            fine: 8,
        }
    }

    /// The quick configuration: every cell runs, briefly.
    pub fn quick() -> Cfg {
        Cfg {
            quick: true,
            samples: 2_000,
            max_time: Duration::from_millis(150),
            warmup: Duration::from_millis(20),
            batches: 3,
            python: true,
            verbose: true,
            rounds: 1,
            fine: 1,
        }
    }

    /// Scales a message count per batch down in quick mode.
    pub fn batch(&self, full: u64) -> u64 {
        if self.quick {
            (full / 50).max(4)
        } else {
            full
        }
    }

    /// The share of one measurement of a cell when the cell is measured `pieces` times in a
    /// run: samples, time and batches divided between the pieces; each piece warms up for
    /// its share too, but at least `MIN_WARMUP` (a child process has to start and settle).
    pub fn piece(&self, pieces: usize) -> Cfg {
        const MIN_WARMUP: Duration = Duration::from_millis(40);
        let k = pieces.max(1);
        let mut c = self.clone();
        c.samples = (self.samples / k).max(5);
        c.max_time = self.max_time / k as u32;
        c.batches = (self.batches / k).max(3);
        if k > self.rounds.max(1) {
            c.warmup = (self.warmup * self.rounds.max(1) as u32 / k as u32)
                .max(MIN_WARMUP.min(self.warmup));
        }
        c
    }
}

/// Where the processes (or threads) of a cell run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Two sides on different cores: this side on CPU 0, the peer on CPU 1.
    Split,
    /// Both sides on CPU 0.
    Same,
    /// One process, on CPU 0.
    Single,
}

impl Placement {
    /// The CPU of this (the measuring) side.
    pub fn parent_cpu(self) -> usize {
        0
    }

    /// The CPU of the other side.
    pub fn child_cpu(self) -> usize {
        match self {
            Placement::Split => 1,
            Placement::Same | Placement::Single => 0,
        }
    }

    /// Column title.
    pub fn title(self) -> &'static str {
        match self {
            Placement::Split => "cores 0+1",
            Placement::Same => "both on core 0",
            Placement::Single => "core 0",
        }
    }

    /// Short key (JSON, the Python script's `--pin`).
    pub fn key(self) -> &'static str {
        match self {
            Placement::Split => "split",
            Placement::Same => "same",
            Placement::Single => "single",
        }
    }
}

/// Pins the calling thread to `cpu`; false if the OS refused (fewer CPUs, say).
pub fn pin_to(cpu: usize) -> bool {
    // SAFETY: `set` is a plain bitmask owned by this frame; CPU_ZERO/CPU_SET only write it, and
    // sched_setaffinity(0, …) reads it for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Lets the calling thread run on every CPU again.
pub fn unpin() {
    // SAFETY: as in `pin_to`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for cpu in 0..online_cpus() {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Number of online CPUs (not the affinity mask's count, which pinning changes).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Median cost of one `Instant::now()` pair, in ns: subtracted from single-op samples.
pub fn timer_overhead() -> f64 {
    static OVERHEAD: OnceLock<f64> = OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        let mut v: Vec<f64> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                let e = t.elapsed();
                e.as_nanos() as f64
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    })
}

/// Times each call of `op` on its own: one sample (ns, timer overhead subtracted) per call.
/// Warms up for `cfg.warmup`, then measures up to `cfg.samples` calls or `cfg.max_time`.
/// Stops early with the error if `op` fails.
pub fn per_op<E>(cfg: &Cfg, mut op: impl FnMut() -> Result<(), E>) -> Result<Vec<f64>, E> {
    let overhead = timer_overhead();
    let start = Instant::now();
    while start.elapsed() < cfg.warmup {
        op()?;
    }
    let mut out = Vec::with_capacity(cfg.samples.min(1 << 20));
    let start = Instant::now();
    let mut checked = 0usize;
    while out.len() < cfg.samples {
        let t = Instant::now();
        op()?;
        let ns = t.elapsed().as_nanos() as f64;
        out.push((ns - overhead).max(0.0));
        checked += 1;
        if checked >= 64 || ns > 10_000.0 {
            checked = 0;
            if start.elapsed() >= cfg.max_time && out.len() >= 5 {
                break;
            }
        }
    }
    Ok(out)
}

/// Times `batch` calls of `op` at a time: one sample (ns per call) per batch. For operations
/// of a few ns, where a timer read per call would dominate.
pub fn per_batch<E>(
    cfg: &Cfg,
    batch: u64,
    mut op: impl FnMut(u64) -> Result<(), E>,
) -> Result<Vec<f64>, E> {
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < cfg.warmup {
        for _ in 0..batch {
            op(i)?;
            i = i.wrapping_add(1);
        }
    }
    let n = (cfg.samples as u64 / batch).clamp(5, 100_000) as usize;
    let mut out = Vec::with_capacity(n);
    let start = Instant::now();
    while out.len() < n {
        let t = Instant::now();
        for _ in 0..batch {
            op(i)?;
            i = i.wrapping_add(1);
        }
        out.push(t.elapsed().as_nanos() as f64 / batch as f64);
        if start.elapsed() >= cfg.max_time && out.len() >= 5 {
            break;
        }
    }
    Ok(out)
}

/// Runs `batch_fn` (which moves a whole batch of `m` messages and returns when the receiver
/// has them all) once to warm up, then up to `cfg.batches` times or for `cfg.max_time`
/// (at least 3 times): one sample (ns per message) per batch.
pub fn throughput<E>(
    cfg: &Cfg,
    m: u64,
    mut batch_fn: impl FnMut(u64) -> Result<(), E>,
) -> Result<Vec<f64>, E> {
    let start = Instant::now();
    batch_fn(m)?;
    while start.elapsed() < cfg.warmup {
        batch_fn(m)?;
    }
    let mut out = Vec::with_capacity(cfg.batches);
    let start = Instant::now();
    while out.len() < cfg.batches.max(3) {
        let t = Instant::now();
        batch_fn(m)?;
        out.push(t.elapsed().as_nanos() as f64 / m as f64);
        if start.elapsed() >= cfg.max_time && out.len() >= 3 {
            break;
        }
    }
    Ok(out)
}

/// Summary of one cell's samples (all in ns per operation).
#[derive(Debug, Clone)]
pub struct Stats {
    /// Median.
    pub median: f64,
    /// 99th percentile (latency rows only).
    pub p99: Option<f64>,
    /// Number of samples.
    pub n: usize,
    /// Spread of the medians of five consecutive slices of the samples, relative to the
    /// median: how stable the median is.
    pub spread: f64,
    /// Median and 99th percentile of each piece (round or sub-round) in the order measured:
    /// piece `k` of two lines of one table were measured one right after the other, so the
    /// budget takes its ratios piece by piece.
    pub pieces: Vec<Piece>,
}

/// One piece's (one round's or sub-round's) median and 99th percentile, ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    /// Median.
    pub median: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Stats {
    /// Summarizes `samples`; `p99` only for latency kinds.
    pub fn of(samples: &[f64], latency: bool) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let med = median(samples);
        let p99 = latency.then(|| percentile(samples, 0.99));
        let chunks = 5.min(samples.len());
        let per = samples.len() / chunks;
        let meds: Vec<f64> = (0..chunks)
            .map(|c| {
                let end = if c + 1 == chunks {
                    samples.len()
                } else {
                    (c + 1) * per
                };
                median(&samples[c * per..end])
            })
            .collect();
        let lo = meds.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = meds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = if med > 0.0 { (hi - lo) / med } else { 0.0 };
        Some(Stats {
            median: med,
            p99,
            n: samples.len(),
            spread,
            pieces: Vec::new(),
        })
    }

    /// Summarizes the pooled samples of `pieces` (each the samples of one round or
    /// sub-round, in the order measured), keeping each piece's median and p99. Empty pieces
    /// are left out.
    pub fn of_pieces(pieces: &[Vec<f64>], latency: bool) -> Option<Stats> {
        let pooled: Vec<f64> = pieces.iter().flatten().copied().collect();
        let mut st = Stats::of(&pooled, latency)?;
        st.pieces = pieces
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| Piece {
                median: median(p),
                p99: percentile(p, 0.99),
            })
            .collect();
        Some(st)
    }
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

fn percentile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    s[i.min(s.len() - 1)]
}

/// A few 64-bit words in a shared segment, each on its own 128-byte line: counters and flags
/// between the runner and its children.
#[derive(Debug)]
pub struct Words {
    seg: Segment,
}

/// Number of words in a [`Words`] segment.
pub const WORDS: usize = 8;

impl Words {
    /// Creates a segment of zeroed words under a fresh name.
    pub fn create() -> Result<Words, Failure> {
        let name = SegmentName::unique();
        let seg = Segment::builder(&name, ObjectKind::Bytes)
            .count(WORDS as u64)
            .body_len(WORDS * 128)
            .create(|_, _| {})
            .map_err(|e| Failure::new("creating a shared word segment", e))?;
        Ok(Words { seg })
    }

    /// Opens the words segment `name` (in a child).
    pub fn open(name: &str) -> Result<Words, Failure> {
        let name = SegmentName::new(name)
            .map_err(|e| Failure::new(format!("bad segment name {name}"), e))?;
        let seg = Segment::builder(&name, ObjectKind::Bytes)
            .open()
            .map_err(|e| Failure::new(format!("opening {name}"), e))?;
        if seg.body_len() < WORDS * 128 {
            return Err(Failure::msg(format!("segment {name} is too short")));
        }
        Ok(Words { seg })
    }

    /// The segment's name, for a child's arguments.
    pub fn name(&self) -> String {
        self.seg.name().as_str().to_owned()
    }

    /// Word `i` (< [`WORDS`]).
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < WORDS, "word index {i} out of range");
        // SAFETY: the body is at least WORDS*128 bytes (checked on open, set on create) and
        // 128-byte aligned; word i lives at offset 128*i, is 8-aligned, and is only ever
        // accessed atomically by every process that maps the segment.
        unsafe { &*self.seg.body().as_ptr().add(128 * i).cast::<AtomicU64>() }
    }

    /// The low half of word `i` as a 32-bit futex word.
    pub fn word32(&self, i: usize) -> &AtomicU32 {
        assert!(i < WORDS, "word index {i} out of range");
        // SAFETY: as in `word`; the 4 bytes at 128*i are 4-aligned and used only as this
        // atomic u32 by the users of `word32(i)` (never mixed with `word(i)`).
        unsafe { &*self.seg.body().as_ptr().add(128 * i).cast::<AtomicU32>() }
    }
}

/// A child process of a cell: joined (then killed, if it hangs) when dropped.
#[derive(Debug)]
pub struct Child(Option<Process>);

impl Child {
    /// Starts this binary in `role`, pinned to `cpu`, with `args` after the CPU.
    pub fn start(role: &str, cpu: usize, args: &[String]) -> Result<Child, Failure> {
        let p = Process::builder(role)
            .arg(cpu.to_string())
            .args(args.iter().cloned())
            .daemon(true)
            .start()
            .map_err(|e| Failure::new(format!("starting child {role}"), e))?;
        Ok(Child(Some(p)))
    }

    /// Waits up to 10 s for the child to exit; kills it otherwise. Ok if it exited with 0.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), Failure> {
        let Some(mut p) = self.0.take() else {
            return Ok(());
        };
        match p.join_timeout(Duration::from_secs(10)) {
            Ok(Some(st)) if st.success() => Ok(()),
            Ok(Some(st)) => Err(Failure::msg(format!(
                "child {} exited with {}",
                p.role(),
                st.exitcode()
            ))),
            Ok(None) => {
                let _ = p.kill();
                let _ = p.join();
                Err(Failure::msg(format!(
                    "child {} hung and was killed",
                    p.role()
                )))
            }
            Err(e) => Err(Failure::new(format!("joining child {}", p.role()), e)),
        }
    }

    /// Kills the child at once (after a failure on this side).
    pub fn kill(mut self) {
        if let Some(mut p) = self.0.take() {
            let _ = p.kill();
            let _ = p.join();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut p) = self.0.take() {
            let _ = p.kill();
            let _ = p.join();
        }
    }
}

/// The child side's start: pins to the CPU in `args[0]`, returns the remaining arguments.
pub fn child_args(args: &[String]) -> &[String] {
    if let Some(cpu) = args.first().and_then(|a| a.parse::<usize>().ok()) {
        pin_to(cpu);
    }
    args.get(1..).unwrap_or(&[])
}

/// Spins on `ready` (with a yield every 256 polls, as shm-core's busy-poll waits do, so that
/// a peer on the same core runs)
/// until it returns true or `timeout` passes.
pub fn spin_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut n = 0u32;
    loop {
        if ready() {
            return true;
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(256) {
            if start.elapsed() >= timeout {
                return false;
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Formats ns for a table: `4.41 ns`, `152 ns`, `47.1 µs`, `3.20 ms`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Formats a rate in items per second: `32.1 M/s`.
pub fn fmt_rate(ns_per_item: f64) -> String {
    if ns_per_item <= 0.0 {
        return "∞".into();
    }
    let r = 1e9 / ns_per_item;
    if r >= 1e9 {
        format!("{:.2} G/s", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.1} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.0} k/s", r / 1e3)
    } else {
        format!("{r:.0} /s")
    }
}

/// Formats a byte rate: `29.8 GiB/s`.
pub fn fmt_bytes_rate(ns_per_item: f64, bytes: u64) -> String {
    if ns_per_item <= 0.0 {
        return "∞".into();
    }
    let bps = bytes as f64 * 1e9 / ns_per_item;
    if bps >= (1u64 << 30) as f64 {
        format!("{:.1} GiB/s", bps / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB/s", bps / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_median_p99_and_spread() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&v, true).unwrap();
        assert_eq!(s.median, 51.0); // index round(99*0.5)=50 → value 51
        assert_eq!(s.p99, Some(99.0));
        assert_eq!(s.n, 100);
        assert!(s.spread > 0.0);
        let flat = vec![7.0; 50];
        let s = Stats::of(&flat, false).unwrap();
        assert_eq!((s.median, s.p99, s.spread), (7.0, None, 0.0));
        assert!(Stats::of(&[], true).is_none());
        let s = Stats::of_pieces(&[vec![1.0, 2.0, 3.0], vec![], vec![10.0; 3]], true).unwrap();
        assert_eq!((s.n, s.median), (6, 10.0)); // index round(5 × 0.5) = 3
        let want = [
            Piece {
                median: 2.0,
                p99: 3.0,
            },
            Piece {
                median: 10.0,
                p99: 10.0,
            },
        ];
        assert_eq!(s.pieces, want);
        assert!(Stats::of_pieces(&[vec![], vec![]], true).is_none());
    }

    #[test]
    fn a_piece_gets_its_share() {
        let full = Cfg::full();
        let c = full.piece(full.rounds);
        assert_eq!(c.samples, full.samples / full.rounds);
        assert_eq!(c.warmup, full.warmup);
        let k = full.rounds * full.fine;
        let f = full.piece(k);
        assert_eq!(f.max_time, full.max_time / k as u32);
        assert_eq!(f.batches, (full.batches / k).max(3));
        assert!(f.warmup < full.warmup && f.warmup >= Duration::from_millis(40));
        let q = Cfg::quick();
        assert_eq!(q.piece(1).warmup, q.warmup);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_ns(4.414), "4.41 ns");
        assert_eq!(fmt_ns(152.4), "152 ns");
        assert_eq!(fmt_ns(47_100.0), "47.1 µs");
        assert_eq!(fmt_ns(3_200_000.0), "3.20 ms");
        assert_eq!(fmt_rate(31.25), "32.0 M/s");
        assert_eq!(fmt_bytes_rate(1e9, 1 << 30), "1.0 GiB/s");
    }

    #[test]
    fn per_batch_and_throughput_count_samples() {
        let cfg = Cfg {
            samples: 1000,
            max_time: Duration::from_secs(5),
            warmup: Duration::ZERO,
            batches: 4,
            ..Cfg::quick()
        };
        let mut calls = 0u64;
        let s = per_batch(&cfg, 100, |_| -> Result<(), ()> {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(s.len(), 10);
        assert_eq!(calls, 1000);
        let mut batches = 0;
        let s = throughput(&cfg, 10, |m| -> Result<(), ()> {
            assert_eq!(m, 10);
            batches += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(batches, 5); // one warm-up batch
        let e = per_op(&cfg, || Err::<(), _>("boom")).unwrap_err();
        assert_eq!(e, "boom");
    }
}
