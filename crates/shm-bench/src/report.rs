//! The run's results: the terminal tables, `BENCHMARKS.md`, JSON, and the budget checks.

use crate::harness::{fmt_bytes_rate, fmt_ns, fmt_rate, Cfg, Placement, Stats};
use crate::rows::{bytes, queue, Group, Kind, Miss, Who};
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One cell's outcome.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The column.
    pub placement: Placement,
    /// The numbers, or why there are none.
    pub outcome: Result<Stats, Miss>,
}

/// One measured line.
#[derive(Debug, Clone)]
pub struct Line {
    /// The table's key.
    pub group: &'static str,
    /// The implementation.
    pub line: String,
    /// Whose.
    pub who: Who,
    /// How the sides wait.
    pub wait: &'static str,
    /// One per column of the table.
    pub cells: Vec<Cell>,
}

/// Facts about the machine and the run, for the header.
#[derive(Debug, Clone)]
pub struct Conditions {
    /// UTC date and time of the start.
    pub date: String,
    /// CPU model.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`, if there is one.
    pub rustc: String,
    /// Python version, if any.
    pub python: Option<String>,
    /// The command line.
    pub command: String,
    /// Median cost of a timer read pair, subtracted from single-op samples.
    pub timer_overhead_ns: f64,
    /// Seconds the run took.
    pub seconds: f64,
    /// Whether pinning to CPUs 0 and 1 worked.
    pub pinned: bool,
}

/// The whole run.
#[derive(Debug)]
pub struct Report {
    /// The configuration.
    pub cfg: Cfg,
    /// Machine and run facts.
    pub cond: Conditions,
    /// The tables measured (in order).
    pub groups: Vec<Group>,
    /// The lines measured.
    pub lines: Vec<Line>,
}

impl Report {
    fn lines_of<'a>(&'a self, g: &'a Group) -> impl Iterator<Item = &'a Line> + 'a {
        self.lines.iter().filter(move |l| l.group == g.key)
    }

    /// The reference line of a table: its first line of ours.
    fn reference<'a>(&'a self, g: &'a Group) -> Option<&'a Line> {
        self.lines_of(g).find(|l| l.who == Who::Ours)
    }

    /// The median of `line` in `group` at `p`, if measured.
    pub fn median(&self, group: &str, line: &str, p: Placement) -> Option<f64> {
        self.lines
            .iter()
            .find(|l| l.group == group && l.line == line)?
            .cells
            .iter()
            .find(|c| c.placement == p)?
            .outcome
            .as_ref()
            .ok()
            .map(|s| s.median)
    }

    fn ratio(&self, g: &Group, l: &Line, p: Placement) -> Option<f64> {
        let r = self.reference(g)?;
        let mine = self.median(g.key, &l.line, p)?;
        let base = self.median(g.key, &r.line, p)?;
        (base > 0.0).then(|| mine / base)
    }

    /// Number of cells that failed (not skipped).
    pub fn failures(&self) -> Vec<String> {
        let mut v = Vec::new();
        for l in &self.lines {
            for c in &l.cells {
                if let Err(Miss::Failed(e)) = &c.outcome {
                    v.push(format!(
                        "{} / {} / {}: {e}",
                        l.group,
                        l.line,
                        c.placement.title()
                    ));
                }
            }
        }
        v
    }

    /// The budget checks of ARCHITECTURE.md, from this run.
    pub fn budget(&self) -> Vec<Check> {
        budget_checks(self)
    }

    /// The tables as plain text for the terminal.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for g in &self.groups {
            if self.lines_of(g).next().is_none() {
                continue;
            }
            let _ = writeln!(s, "\n== {}  [{}]", g.title, g.key);
            let _ = writeln!(
                s,
                "   one op = {}; ×ours = this line's median ÷ the ★ line's median in the same column",
                g.op
            );
            let mut header = format!("   {:<56} {:<7} {:<26}", "implementation", "who", "wait");
            for p in g.placements {
                let _ = write!(header, " | {:<40}", p.title());
            }
            let _ = writeln!(s, "{header}");
            let r = self.reference(g).map(|l| l.line.clone());
            for l in self.lines_of(g) {
                let star = if Some(&l.line) == r.as_ref() {
                    "★"
                } else {
                    " "
                };
                let mut row = format!("{star}  {:<56} {:<7} {:<26}", l.line, l.who.label(), l.wait);
                for p in g.placements {
                    let cell = l.cells.iter().find(|c| c.placement == *p);
                    let txt = match cell.map(|c| &c.outcome) {
                        Some(Ok(st)) => {
                            let ratio = self
                                .ratio(g, l, *p)
                                .map_or("-".into(), |x| format!("{x:.2}x"));
                            let second = match g.kind {
                                Kind::Latency => {
                                    format!("p99 {}", st.p99.map_or("-".into(), fmt_ns))
                                }
                                Kind::Throughput { bytes: None } => fmt_rate(st.median),
                                Kind::Throughput { bytes: Some(b) } => fmt_bytes_rate(st.median, b),
                            };
                            format!("{:>9} {:>14} {:>8}", fmt_ns(st.median), second, ratio)
                        }
                        Some(Err(Miss::Skipped(why))) => format!("skipped: {why}"),
                        Some(Err(Miss::Failed(why))) => format!("FAILED: {why}"),
                        None => "-".into(),
                    };
                    let _ = write!(row, " | {txt:<40}");
                }
                let _ = writeln!(s, "{}", row.trim_end());
            }
        }
        let checks = self.budget();
        if !checks.is_empty() {
            let _ = writeln!(s, "\n== Budget (ARCHITECTURE.md), from this run");
            for c in checks {
                let _ = writeln!(
                    s,
                    "   {:<8} {}: {} [{}] (budget {})",
                    c.verdict(),
                    c.what,
                    c.shown(),
                    c.shown_spread(),
                    c.budget
                );
            }
        }
        s
    }

    /// `BENCHMARKS.md`: conditions, the tables, and the budget, all from this run.
    pub fn markdown(&self) -> String {
        let c = &self.cond;
        let mut s = String::new();
        let _ = writeln!(s, "# shm-ipc benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `shm-bench` from the run it describes; do not edit by hand. \
             Regenerate with `scripts/bench.sh`, iceoryx2 included (about {:.0} minutes).\n",
            (c.seconds / 60.0).ceil().max(1.0)
        );
        let _ = writeln!(s, "## Conditions\n");
        let _ = writeln!(s, "- date (UTC): {}", c.date);
        let _ = writeln!(s, "- command: `{}`", c.command);
        let _ = writeln!(
            s,
            "- mode: {}",
            if self.cfg.quick {
                "quick (numbers not meant to be quoted)"
            } else {
                "full"
            }
        );
        let _ = writeln!(s, "- CPU: {} ({} online)", c.cpu, c.cpus);
        let _ = writeln!(s, "- kernel: {}", c.kernel);
        let _ = writeln!(s, "- rustc: {}", c.rustc);
        let _ = writeln!(
            s,
            "- python: {}",
            c.python
                .as_deref()
                .unwrap_or("not found (Python rows skipped)")
        );
        let _ = writeln!(
            s,
            "- pinning: {}",
            if c.pinned {
                "\"cores 0+1\" = the measuring side on CPU 0, the other process (or thread) on CPU 1; \"both on core 0\" = both on CPU 0; one-process rows on CPU 0"
            } else {
                "pinning failed on this machine: placements are nominal"
            }
        );
        let rounds = self.cfg.rounds.max(1);
        let fine = self.cfg.fine.max(1);
        let round = self.cfg.piece(rounds);
        let piece = self.cfg.piece(rounds * fine);
        let _ = writeln!(
            s,
            "- sampling: every cell is measured in {rounds} interleaved rounds (every table once per round, column by column, \
             each line in turn) whose samples are pooled; per round a cell warms up {:.0} ms, then takes up to {} samples, {} \
             batches or {:.2} s. The lines of a budget ratio are measured {fine} times per round instead ({} pieces), each time \
             right after the other lines of their table: {:.0} ms warm-up and up to {} samples, {} batches or {:.3} s each. \
             Latency rows time every operation on its own (the median timer overhead, {:.1} ns, subtracted) unless the table \
             says batches; throughput rows time batches and divide by the batch size; run took {:.0} s",
            round.warmup.as_secs_f64() * 1e3,
            round.samples,
            round.batches,
            round.max_time.as_secs_f64(),
            rounds * fine,
            piece.warmup.as_secs_f64() * 1e3,
            piece.samples,
            piece.batches,
            piece.max_time.as_secs_f64(),
            c.timer_overhead_ns,
            c.seconds
        );
        let _ = writeln!(
            s,
            "- reading the tables: medians; p99 for latencies; ×ours = the line's median ÷ the ★ line's median in the same column \
             (above 1: ours is faster); ± = spread of the medians of five consecutive slices of the samples, relative to the median \
             (how stable the median is)\n"
        );
        let checks = self.budget();
        if !checks.is_empty() {
            let _ = writeln!(s, "## Budget (ARCHITECTURE.md), from this run\n");
            let _ = writeln!(
                s,
                "Each ratio is taken from lines measured side by side in this run. Where both lines were measured \
                 in the same pieces (rounds and sub-rounds, one line right after the other), the ratio is the median \
                 of the piece-by-piece ratios, and \"spread\" is their middle half (25th–75th percentile) and how many \
                 pairs; otherwise the ratio of the pooled medians. A rate ratio (\"message rate ÷\", \"bandwidth ÷\") is the \
                 other line's time ÷ this line's. A p99 check takes each piece's p99 ÷ its median the same way (a pooled p99 \
                 would mix the machine's slow spells into the tail).\n"
            );
            let _ = writeln!(s, "| check | from this run | spread | budget | verdict |");
            let _ = writeln!(s, "|---|---|---|---|---|");
            for c in &checks {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} |",
                    c.what,
                    c.shown(),
                    c.shown_spread(),
                    c.budget,
                    c.verdict()
                );
            }
            let _ = writeln!(s);
        }
        for g in &self.groups {
            if self.lines_of(g).next().is_none() {
                continue;
            }
            let _ = writeln!(s, "## {}\n", g.title);
            let _ = writeln!(s, "`--only {}`; one op = {}.\n", g.key, g.op);
            let mut head = "| implementation | who | wait |".to_string();
            let mut rule = "|---|---|---|".to_string();
            for p in g.placements {
                match g.kind {
                    Kind::Latency => {
                        let _ = write!(head, " median, {0} | p99, {0} | ×ours | ± |", p.title());
                    }
                    Kind::Throughput { .. } => {
                        let _ = write!(
                            head,
                            " per message, {0} | rate, {0} | ×ours | ± |",
                            p.title()
                        );
                    }
                }
                rule.push_str("--:|--:|--:|--:|");
            }
            let _ = writeln!(s, "{head}\n{rule}");
            let r = self.reference(g).map(|l| l.line.clone());
            for l in self.lines_of(g) {
                let name = if Some(&l.line) == r.as_ref() {
                    format!("★ **{}**", l.line)
                } else if l.who == Who::Ours {
                    format!("**{}**", l.line)
                } else {
                    l.line.clone()
                };
                let mut row = format!("| {name} | {} | {} |", l.who.label(), l.wait);
                for p in g.placements {
                    match l
                        .cells
                        .iter()
                        .find(|c| c.placement == *p)
                        .map(|c| &c.outcome)
                    {
                        Some(Ok(st)) => {
                            let second = match g.kind {
                                Kind::Latency => st.p99.map_or("-".into(), fmt_ns),
                                Kind::Throughput { bytes: None } => fmt_rate(st.median),
                                Kind::Throughput { bytes: Some(b) } => fmt_bytes_rate(st.median, b),
                            };
                            let ratio = self
                                .ratio(g, l, *p)
                                .map_or("-".into(), |x| format!("{x:.2}"));
                            let _ = write!(
                                row,
                                " {} | {} | {} | {:.0}% |",
                                fmt_ns(st.median),
                                second,
                                ratio,
                                st.spread * 100.0
                            );
                        }
                        Some(Err(Miss::Skipped(why))) => {
                            let _ = write!(row, " skipped: {why} | | | |");
                        }
                        Some(Err(Miss::Failed(why))) => {
                            let _ = write!(row, " FAILED: {} | | | |", why.replace('|', "/"));
                        }
                        None => row.push_str(" - | | | |"),
                    }
                }
                let _ = writeln!(s, "{row}");
            }
            let _ = writeln!(s);
        }
        s
    }

    /// The run as JSON.
    pub fn json(&self) -> Value {
        let c = &self.cond;
        let groups: Vec<Value> = self
            .groups
            .iter()
            .filter(|g| self.lines_of(g).next().is_some())
            .map(|g| {
                let lines: Vec<Value> = self
                    .lines_of(g)
                    .map(|l| {
                        let cells: Vec<Value> = l
                            .cells
                            .iter()
                            .map(|cell| {
                                let mut o = json!({ "placement": cell.placement.key() });
                                match &cell.outcome {
                                    Ok(st) => {
                                        o["median_ns"] = json!(st.median);
                                        o["p99_ns"] = json!(st.p99);
                                        o["samples"] = json!(st.n);
                                        o["spread"] = json!(st.spread);
                                        o["piece_medians_ns"] = json!(st
                                            .pieces
                                            .iter()
                                            .map(|p| p.median)
                                            .collect::<Vec<_>>());
                                        o["ratio_to_ours"] = json!(self.ratio(g, l, cell.placement));
                                    }
                                    Err(Miss::Skipped(w)) => o["skipped"] = json!(w),
                                    Err(Miss::Failed(w)) => o["failed"] = json!(w),
                                }
                                o
                            })
                            .collect();
                        json!({ "line": l.line, "who": l.who.label(), "wait": l.wait, "cells": cells })
                    })
                    .collect();
                let kind = match g.kind {
                    Kind::Latency => json!("latency"),
                    Kind::Throughput { bytes } => json!({ "throughput": { "bytes": bytes } }),
                };
                json!({ "key": g.key, "area": g.area, "title": g.title, "op": g.op, "kind": kind, "lines": lines })
            })
            .collect();
        let budget: Vec<Value> = self
            .budget()
            .iter()
            .map(|b| json!({
                "check": b.what, "value": b.value, "unit": if b.ratio { "x" } else { "ns" },
                "spread": b.spread.map(|(lo, hi, n)| json!({ "p25": lo, "p75": hi, "pairs": n })),
                "budget": b.budget, "met": b.met,
            }))
            .collect();
        json!({
            "date": c.date, "command": c.command, "quick": self.cfg.quick,
            "machine": { "cpu": c.cpu, "cpus": c.cpus, "kernel": c.kernel, "rustc": c.rustc, "python": c.python },
            "timer_overhead_ns": c.timer_overhead_ns, "seconds": c.seconds, "pinned": c.pinned,
            "groups": groups, "budget": budget,
        })
    }
}

/// The middle half of a check's piece-by-piece ratios (25th and 75th percentile) and how many
/// pieces.
pub type Spread = (f64, f64, usize);

/// One budget check.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is compared.
    pub what: String,
    /// The measured ratio (or, for an absolute bound, the median in ns), if it ran.
    pub value: Option<f64>,
    /// Whether `value` is a ratio (else ns).
    pub ratio: bool,
    /// The middle half (25th to 75th percentile) of the ratios taken piece by piece, and how
    /// many pieces: how stable the ratio is. `None` when the two lines were not measured in
    /// matching pieces.
    pub spread: Option<Spread>,
    /// The budget, in words.
    pub budget: String,
    /// The bound, for the "unstable" mark: `Some(x)` for a ratio bound at `x`.
    bound_at: Option<f64>,
    /// Whether it is met (None: not measured).
    pub met: Option<bool>,
}

impl Check {
    fn verdict(&self) -> String {
        let v = match self.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => return "not run".into(),
        };
        match (self.spread, self.bound_at) {
            (Some((lo, hi, _)), Some(x)) if lo <= x && x <= hi => {
                format!("{v} (unstable: the middle half of the pairs straddles the budget)")
            }
            _ => v.into(),
        }
    }

    fn shown(&self) -> String {
        match self.value {
            None => "-".into(),
            Some(v) if self.ratio => format!("{v:.2}x"),
            Some(v) => fmt_ns(v),
        }
    }

    fn shown_spread(&self) -> String {
        match self.spread {
            Some((lo, hi, n)) => format!("{lo:.2}x–{hi:.2}x of {n}"),
            None => "-".into(),
        }
    }
}

/// A line's cell from the cores-0+1 column, or the single column for one-process rows.
fn cell_of<'a>(r: &'a Report, g: &str, l: &str) -> Option<&'a Stats> {
    let line = r.lines.iter().find(|x| x.group == g && x.line == l)?;
    let get = |p| {
        line.cells
            .iter()
            .find(|c| c.placement == p)
            .and_then(|c| c.outcome.as_ref().ok())
    };
    get(Placement::Split).or_else(|| get(Placement::Single))
}

/// A budget bound: on a ratio, or on `a`'s own median.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// The ratio at most this.
    AtMost(f64),
    /// The ratio at least this.
    AtLeast(f64),
    /// `a`'s median strictly below this many ns (with [`Against::Nothing`]).
    BelowNs(f64),
    /// `a` was measured at all (not skipped) (with [`Against::Nothing`]).
    Measured,
}

/// What a budget line's `a` is compared with.
#[derive(Debug, Clone, Copy)]
enum Against {
    /// `a`'s time per operation ÷ this line's (table key, line).
    Time(&'static str, &'static str),
    /// `a`'s rate ÷ this line's rate, i.e. this line's time ÷ `a`'s (table key, line).
    Rate(&'static str, &'static str),
    /// `a`'s own p99 ÷ its median.
    OwnP99,
    /// Nothing: the bound is on `a` itself.
    Nothing,
}

/// One budget of ARCHITECTURE.md (and issue 11): `a` (a table key and a line) against `b`,
/// within `bound`. `paired`: both lines are measured finely (`Case::fine`), so the ratio is
/// taken piece by piece; the unit tests hold the lines to that.
struct BudgetSpec {
    what: &'static str,
    a: (&'static str, &'static str),
    b: Against,
    bound: Bound,
    /// Read by the unit test that holds both lines to `Case::fine`.
    #[cfg_attr(not(test), allow(dead_code))]
    paired: bool,
}

const fn spec(
    what: &'static str,
    a: (&'static str, &'static str),
    b: Against,
    bound: Bound,
) -> BudgetSpec {
    BudgetSpec {
        what,
        a,
        b,
        bound,
        paired: false,
    }
}

/// [`spec`] of two finely measured lines.
const fn paired(
    what: &'static str,
    a: (&'static str, &'static str),
    b: Against,
    bound: Bound,
) -> BudgetSpec {
    BudgetSpec {
        paired: true,
        ..spec(what, a, b, bound)
    }
}

const SPSC_RT: (&str, &str) = (queue::RT_BUSY, queue::SPSC_RT_LINE);
const SPSC_TP: (&str, &str) = (queue::TP, queue::SPSC_TP_LINE);
const RTRB: Against = Against::Rate(queue::TP, queue::RTRB_LINE);

/// The budget checks; the unit test below keeps every (table, line) here in `rows::cases()`.
const BUDGET: &[BudgetSpec] = &[
    paired(
        "SPSC one-way, default wait protocol, time per message ÷ rtrb's between two threads",
        SPSC_TP,
        Against::Time(queue::TP, queue::RTRB_LINE),
        Bound::AtMost(1.0),
    ),
    paired(
        "SPSC one-way in slices (push_slice/pop_slice of 256): message rate ÷ rtrb's message rate between two threads",
        (queue::TP, queue::SPSC_SLICES_LINE),
        RTRB,
        Bound::AtLeast(3.0),
    ),
    paired(
        "SPSC one-way in chunks (write_chunk/read_chunk of 256): message rate ÷ rtrb's message rate between two threads",
        (queue::TP, queue::SPSC_CHUNKS_LINE),
        RTRB,
        Bound::AtLeast(3.0),
    ),
    paired(
        "SPSC round trip ÷ atomic ping-pong (busy-poll, cores 0+1)",
        SPSC_RT,
        Against::Time(queue::RT_BUSY, queue::ATOMIC_RT_LINE),
        Bound::AtMost(1.2),
    ),
    paired(
        "(reference, not an ARCHITECTURE.md line) SPSC round trip ÷ two-word ping-pong, the floor any pair of queues pays (one index line per direction), held to the same 1.2x",
        SPSC_RT,
        Against::Time(queue::RT_BUSY, queue::TWO_WORD_RT_LINE),
        Bound::AtMost(1.2),
    ),
    paired(
        "MPMC one-way, time per message ÷ crossbeam ArrayQueue's between two threads",
        (queue::TP, queue::MPMC_TP_LINE),
        Against::Time(queue::TP, queue::ARRAY_QUEUE_LINE),
        Bound::AtMost(1.0),
    ),
    paired(
        "64 B messages through the SPSC byte queue: message rate ÷ the SPSC ring's u64 message rate (both one-way between two processes)",
        (queue::TP, queue::BYTES_TP_LINE),
        Against::Rate(SPSC_TP.0, SPSC_TP.1),
        Bound::AtLeast(0.8),
    ),
    paired(
        "Pipe round trip ÷ the round trip through the SPSC byte queues it is built on (8 B messages, same verbs, busy-poll)",
        (queue::RT_BUSY, queue::PIPE_RT_LINE),
        Against::Time(queue::RT_BUSY, queue::BYTES_RT_LINE),
        Bound::AtMost(1.1),
    ),
    paired(
        "Pipe round trip p99 ÷ its median (busy-poll, cores 0+1)",
        (queue::RT_BUSY, queue::PIPE_RT_LINE),
        Against::OwnP99,
        Bound::AtMost(3.0),
    ),
    paired(
        "1 MiB messages through a loan (written once, read in place), bandwidth ÷ memcpy's (one 1 MiB copy per message into a ring-sized set of buffers, one process)",
        (bytes::KEY_1M, bytes::LOAN_LINE),
        Against::Rate(bytes::KEY_1M, bytes::MEMCPY_LINE),
        Bound::AtLeast(0.9),
    ),
    spec(
        "iceoryx2 built and measured in this run (its round trip, busy-poll, cores 0+1)",
        (queue::RT_BUSY, "iceoryx2 publish-subscribe"),
        Against::Nothing,
        Bound::Measured,
    ),
    spec(
        "Lock uncontended lock+unlock ÷ std::sync::Mutex (parity: stands for the 100x-Python line, mp.Lock being C)",
        ("lock-uncontended", "shm-lock Lock"),
        Against::Time("lock-uncontended", "std::sync::Mutex"),
        Bound::AtMost(1.0),
    ),
    spec(
        "Value::update ÷ std::sync::Mutex<i64> increment (parity: stands for the 100x-Python line, mp.Value's get_lock being mp.Lock)",
        ("value-locked", "shm-value Value<i64> update (locked)"),
        Against::Time("value-locked", "std::sync::Mutex<i64>"),
        Bound::AtMost(1.2),
    ),
    spec(
        "Value<i64> fetch_add ÷ AtomicI64 fetch_add",
        ("value-atomic", "shm-value Value<i64> fetch_add"),
        Against::Time("value-atomic", "std AtomicI64 fetch_add"),
        Bound::AtMost(1.1),
    ),
    spec(
        "Array<f64> copy ÷ memcpy, parity (stands for the 100x-Python line, mp.Array being a memcpy) (array-in-8M)",
        ("array-in-8M", "shm-array Array<f64>"),
        Against::Time("array-in-8M", "Vec<f64> copy_from_slice (memcpy)"),
        Bound::AtMost(1.11),
    ),
    spec(
        "Array<f64> copy ÷ memcpy, parity (stands for the 100x-Python line, mp.Array being a memcpy) (array-out-8M)",
        ("array-out-8M", "shm-array Array<f64>"),
        Against::Time("array-out-8M", "Vec<f64> copy_from_slice (memcpy)"),
        Bound::AtMost(1.11),
    ),
    spec(
        "Array<f64> copy ÷ memcpy, parity (stands for the 100x-Python line, mp.Array being a memcpy) (array-in-256M)",
        ("array-in-256M", "shm-array Array<f64>"),
        Against::Time("array-in-256M", "Vec<f64> copy_from_slice (memcpy)"),
        Bound::AtMost(1.11),
    ),
    spec(
        "Array<f64> copy ÷ memcpy, parity (stands for the 100x-Python line, mp.Array being a memcpy) (array-out-256M)",
        ("array-out-256M", "shm-array Array<f64>"),
        Against::Time("array-out-256M", "Vec<f64> copy_from_slice (memcpy)"),
        Bound::AtMost(1.11),
    ),
    spec(
        "Python mp.Queue round trip ÷ SPSC round trip",
        (queue::RT_BUSY, "Python mp.Queue"),
        Against::Time(SPSC_RT.0, SPSC_RT.1),
        Bound::AtLeast(100.0),
    ),
    spec(
        "Python mp.Queue one-way ÷ SPSC one-way",
        (queue::TP, "Python mp.Queue"),
        Against::Time(SPSC_TP.0, SPSC_TP.1),
        Bound::AtLeast(100.0),
    ),
    spec(
        "Python mp.Pool(2).map ÷ Pool(2).map, chunksize 1",
        ("pool-map-c1", "Python mp.Pool(2).map"),
        Against::Time("pool-map-c1", "shm-process Pool(2).map"),
        Bound::AtLeast(50.0),
    ),
    spec(
        "Python mp.Pool(2).map ÷ Pool(2).map, chunksize 1000",
        ("pool-map-c1000", "Python mp.Pool(2).map"),
        Against::Time("pool-map-c1000", "shm-process Pool(2).map"),
        Bound::AtLeast(2.0),
    ),
    spec(
        "Pool(2).apply round trip",
        ("pool-apply-rt", "shm-process Pool(2).apply"),
        Against::Nothing,
        Bound::BelowNs(20_000.0),
    ),
    spec(
        "Python Manager().dict() get ÷ SharedDict get",
        ("manager-dict-get", "Python Manager().dict() get"),
        Against::Time("manager-dict-get", "shm-manager SharedDict get"),
        Bound::AtLeast(100.0),
    ),
    spec(
        "Python Manager().dict() set ÷ SharedDict insert",
        ("manager-dict-set", "Python Manager().dict() set"),
        Against::Time("manager-dict-set", "shm-manager SharedDict insert"),
        Bound::AtLeast(100.0),
    ),
];

/// The `q`-quantile of `v` (not empty).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// The ratio of a check and its spread. With two lines measured in the same number of pieces
/// (≥ 2; piece `k` of each measured one right after the other), the ratio is the median of the
/// piece-by-piece ratios, and the spread their middle half; otherwise the ratio of the pooled
/// medians, without a spread. `OwnP99` takes each piece's p99 ÷ its median the same way: the
/// pooled p99 would mix the slow spells of this machine into the tail.
fn ratio(a: &Stats, b: &Against, r: &Report) -> Option<(f64, Option<Spread>)> {
    let (pooled, per_piece): (f64, Vec<f64>) = match *b {
        Against::Time(g, l) | Against::Rate(g, l) => {
            let other = cell_of(r, g, l)?;
            let (num, den) = if matches!(b, Against::Time(..)) {
                (a, other)
            } else {
                (other, a)
            };
            let pairs = if num.pieces.len() == den.pieces.len() {
                num.pieces
                    .iter()
                    .zip(&den.pieces)
                    .filter(|(_, d)| d.median > 0.0)
                    .map(|(n, d)| n.median / d.median)
                    .collect()
            } else {
                Vec::new()
            };
            ((den.median > 0.0).then(|| num.median / den.median)?, pairs)
        }
        Against::OwnP99 => {
            let pieces = a
                .pieces
                .iter()
                .filter(|p| p.median > 0.0)
                .map(|p| p.p99 / p.median)
                .collect();
            let p99 = a.p99?;
            ((a.median > 0.0).then(|| p99 / a.median)?, pieces)
        }
        Against::Nothing => return None,
    };
    if per_piece.len() < 2 {
        return Some((pooled, None));
    }
    Some((
        quantile(&per_piece, 0.5),
        Some((
            quantile(&per_piece, 0.25),
            quantile(&per_piece, 0.75),
            per_piece.len(),
        )),
    ))
}

/// The checks whose tables were part of this run, valued from it.
fn budget_checks(r: &Report) -> Vec<Check> {
    let ran = |g: &str| r.groups.iter().any(|x| x.key == g);
    BUDGET
        .iter()
        .filter(|s| {
            ran(s.a.0)
                && match s.b {
                    Against::Time(g, _) | Against::Rate(g, _) => ran(g),
                    Against::OwnP99 | Against::Nothing => true,
                }
        })
        .map(|s| {
            let a = cell_of(r, s.a.0, s.a.1);
            let (value, spread) = match s.b {
                Against::Nothing => (a.map(|a| a.median), None),
                _ => a
                    .and_then(|a| ratio(a, &s.b, r))
                    .map_or((None, None), |(v, sp)| (Some(v), sp)),
            };
            let (budget, met, bound_at) = match s.bound {
                Bound::AtMost(max) => (
                    format!("≤ {}", times(max)),
                    value.map(|v| v <= max),
                    Some(max),
                ),
                Bound::AtLeast(min) => (
                    format!("≥ {}", times(min)),
                    value.map(|v| v >= min),
                    Some(min),
                ),
                Bound::BelowNs(ns) => (format!("< {}", fmt_ns(ns)), value.map(|v| v < ns), None),
                Bound::Measured => ("measured".into(), Some(value.is_some()), None),
            };
            Check {
                what: s.what.into(),
                value,
                ratio: !matches!(s.b, Against::Nothing),
                spread,
                budget,
                bound_at,
                met,
            }
        })
        .collect()
}

/// A ratio bound as text: `0.80x`, `1.00x`, `1.10x` (near parity, two decimals), `3x`, `100x`.
fn times(x: f64) -> String {
    if x >= 2.0 && x.fract() == 0.0 {
        format!("{x:.0}x")
    } else {
        format!("{x:.2}x")
    }
}

/// Civil UTC date-time of a Unix time (Howard Hinnant's days-to-civil).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Piece;
    use crate::rows::{Group, Kind, TWO};
    use std::time::Duration;

    /// Every line a budget check reads exists in its table, so a renamed line cannot turn a
    /// check into "not run" unnoticed; the lines of a paired check are both measured finely
    /// (so that their pieces pair up).
    #[test]
    fn budget_lines_exist() {
        let cases = crate::rows::cases();
        for s in BUDGET {
            let mut named = vec![s.a];
            match s.b {
                Against::Time(g, l) | Against::Rate(g, l) => named.push((g, l)),
                Against::OwnP99 => {}
                Against::Nothing => assert!(
                    matches!(s.bound, Bound::BelowNs(_) | Bound::Measured),
                    "{}: a ratio bound needs a line to divide by",
                    s.what
                ),
            }
            for (g, l) in named {
                let c = cases.iter().find(|c| c.group == g && c.line == l);
                let c = c.unwrap_or_else(|| panic!("{}: no line {l:?} in table {g}", s.what));
                assert!(
                    !s.paired || c.fine,
                    "{}: {l:?} is not measured finely",
                    s.what
                );
            }
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_461_000), "2026-11-23 19:10:00");
    }

    fn stats(median: f64) -> Result<Stats, Miss> {
        Ok(Stats {
            median,
            p99: Some(median * 2.0),
            n: 10,
            spread: 0.01,
            pieces: Vec::new(),
        })
    }

    /// Stats with a pooled median and p99 and the pieces' medians (each piece's p99 in the
    /// same proportion to its median as the pooled ones).
    fn pieces(median: f64, p99: f64, meds: &[f64]) -> Stats {
        Stats {
            median,
            p99: Some(p99),
            n: 100,
            spread: 0.01,
            pieces: meds
                .iter()
                .map(|&m| Piece {
                    median: m,
                    p99: m * p99 / median,
                })
                .collect(),
        }
    }

    fn conditions() -> Conditions {
        Conditions {
            date: "d".into(),
            cpu: "c".into(),
            cpus: 2,
            kernel: "k".into(),
            rustc: "r".into(),
            python: None,
            command: "x".into(),
            timer_overhead_ns: 20.0,
            seconds: 1.0,
            pinned: true,
        }
    }

    /// The ratios of the issue-11 lines: taken piece by piece when the pieces pair up (so a
    /// drift that moves both lines alike cancels), from the pooled medians when they do not;
    /// rate ratios invert; a p99 check divides a line by itself; an unmeasured loan line is
    /// "not run"; a middle half that straddles the bound is called unstable.
    #[test]
    fn paired_rate_and_own_p99_checks() {
        let group = |key: &'static str, kind| Group {
            key,
            area: "queue",
            title: key,
            op: "op",
            kind,
            placements: TWO,
        };
        let line = |g: &'static str, name: &str, st: Result<Stats, Miss>| Line {
            group: g,
            line: name.into(),
            who: Who::Ours,
            wait: "-",
            cells: vec![Cell {
                placement: Placement::Split,
                outcome: st,
            }],
        };
        let tp = Kind::Throughput { bytes: None };
        let r = Report {
            cfg: Cfg::quick(),
            cond: conditions(),
            groups: vec![
                group(queue::TP, tp),
                group(queue::RT_BUSY, Kind::Latency),
                group(bytes::KEY_1M, tp),
            ],
            lines: vec![
                // The machine slows down 4x during the run; SPSC stays at 2x rtrb's time in
                // every pair, though its pooled median says 5x.
                line(
                    queue::TP,
                    queue::SPSC_TP_LINE,
                    Ok(pieces(10.0, 0.0, &[2.0, 4.0, 8.0, 8.0])),
                ),
                line(
                    queue::TP,
                    queue::RTRB_LINE,
                    Ok(pieces(2.0, 0.0, &[1.0, 2.0, 4.0, 4.0])),
                ),
                // Slices: 0.5 ns against rtrb's 2 ns pooled, but only 3 pieces: no pairs.
                line(
                    queue::TP,
                    queue::SPSC_SLICES_LINE,
                    Ok(pieces(0.5, 0.0, &[0.5, 0.5, 0.5])),
                ),
                // The pipe: p99 3.5x its median in every piece, but a pooled p99 of 10x (a slow
                // spell); its ring: 80 or 120 ns against the pipe's 100.
                line(queue::RT_BUSY, queue::PIPE_RT_LINE, {
                    let mut st = pieces(100.0, 350.0, &[100.0, 100.0, 100.0, 100.0]);
                    st.p99 = Some(1000.0);
                    Ok(st)
                }),
                line(
                    queue::RT_BUSY,
                    queue::BYTES_RT_LINE,
                    Ok(pieces(100.0, 200.0, &[80.0, 80.0, 120.0, 120.0])),
                ),
                line(
                    bytes::KEY_1M,
                    bytes::LOAN_LINE,
                    Err(Miss::Skipped("no loans".into())),
                ),
                line(bytes::KEY_1M, bytes::MEMCPY_LINE, stats(20.0)),
            ],
        };
        let b = r.budget();
        let find = |what: &str| {
            b.iter()
                .find(|c| c.what.starts_with(what))
                .unwrap_or_else(|| panic!("no check {what}: {b:?}"))
        };
        let spsc = find("SPSC one-way, default");
        assert_eq!((spsc.value, spsc.met), (Some(2.0), Some(false)));
        assert_eq!(spsc.spread, Some((2.0, 2.0, 4)));
        assert_eq!(spsc.shown_spread(), "2.00x–2.00x of 4");
        let slices = find("SPSC one-way in slices");
        assert_eq!((slices.value, slices.met), (Some(4.0), Some(true)));
        assert_eq!(slices.spread, None);
        assert_eq!(slices.budget, "≥ 3x");
        let chunks = find("SPSC one-way in chunks");
        assert_eq!((chunks.value, chunks.verdict().as_str()), (None, "not run"));
        let pipe = find("Pipe round trip ÷");
        assert_eq!(pipe.budget, "≤ 1.10x");
        let v = pipe.value.unwrap();
        assert!((0.83..=1.25).contains(&v), "{v}");
        assert!(pipe.verdict().contains("unstable"), "{}", pipe.verdict());
        let p99 = find("Pipe round trip p99");
        assert_eq!((p99.value, p99.met), (Some(3.5), Some(false)));
        assert_eq!(p99.spread, Some((3.5, 3.5, 4)));
        assert_eq!(p99.verdict(), "MISSED");
        let loan = find("1 MiB messages through a loan");
        assert_eq!((loan.value, loan.verdict().as_str()), (None, "not run"));
        assert_eq!(loan.budget, "≥ 0.90x");
        let md = r.markdown();
        assert!(md.contains("| check | from this run | spread | budget | verdict |"));
        assert!(
            md.contains("| 2.00x | 2.00x–2.00x of 4 | ≤ 1.00x | MISSED |"),
            "{md}"
        );
        let j = r.json();
        let spsc_json = j["budget"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["check"]
                    .as_str()
                    .unwrap()
                    .starts_with("SPSC one-way, default")
            })
            .unwrap()
            .clone();
        assert_eq!(spsc_json["spread"]["pairs"], json!(4));
    }

    #[test]
    fn ratios_budget_and_outputs() {
        let g = Group {
            key: "queue-rt-busy",
            area: "queue",
            title: "rt",
            op: "one round trip",
            kind: Kind::Latency,
            placements: TWO,
        };
        let line = |name: &str, who, m: f64| Line {
            group: "queue-rt-busy",
            line: name.into(),
            who,
            wait: "spin",
            cells: vec![
                Cell {
                    placement: Placement::Split,
                    outcome: stats(m),
                },
                Cell {
                    placement: Placement::Same,
                    outcome: Err(Miss::Skipped("no".into())),
                },
            ],
        };
        let r = Report {
            cfg: Cfg {
                max_time: Duration::from_millis(1),
                ..Cfg::quick()
            },
            cond: Conditions {
                date: "d".into(),
                cpu: "c".into(),
                cpus: 2,
                kernel: "k".into(),
                rustc: "r".into(),
                python: None,
                command: "x".into(),
                timer_overhead_ns: 20.0,
                seconds: 1.0,
                pinned: true,
            },
            groups: vec![g.clone()],
            lines: vec![
                line("shm-queue SPSC ring", Who::Ours, 150.0),
                line("atomic ping-pong in shared memory", Who::Floor, 60.0),
            ],
        };
        assert_eq!(r.ratio(&g, &r.lines[1], Placement::Split), Some(0.4));
        assert_eq!(r.ratio(&g, &r.lines[1], Placement::Same), None);
        let b = r.budget();
        let first = &b[0];
        assert_eq!(first.value, Some(2.5));
        assert_eq!(first.met, Some(false));
        assert!(r.failures().is_empty());
        let md = r.markdown();
        assert!(md.contains("★ **shm-queue SPSC ring**"));
        assert!(md.contains("| 0.40 |"));
        assert!(md.contains("MISSED"));
        let text = r.text();
        assert!(text.contains("0.40x"));
        let j = r.json();
        assert_eq!(
            j["groups"][0]["lines"][1]["cells"][0]["ratio_to_ours"],
            json!(0.4)
        );
        assert_eq!(
            j["groups"][0]["lines"][0]["cells"][1]["skipped"],
            json!("no")
        );
    }

    /// The one-process pool tables: the ratio lines read the single column, the apply line is
    /// an absolute bound shown in ns.
    #[test]
    fn single_column_ratios_and_an_absolute_bound() {
        let group = |key: &'static str| Group {
            key,
            area: "pool",
            title: key,
            op: "one item",
            kind: Kind::Latency,
            placements: crate::rows::ONE,
        };
        let line = |group: &'static str, name: &str, who, m: f64| Line {
            group,
            line: name.into(),
            who,
            wait: "-",
            cells: vec![Cell {
                placement: Placement::Single,
                outcome: stats(m),
            }],
        };
        let r = Report {
            cfg: Cfg::quick(),
            cond: Conditions {
                date: "d".into(),
                cpu: "c".into(),
                cpus: 2,
                kernel: "k".into(),
                rustc: "r".into(),
                python: None,
                command: "x".into(),
                timer_overhead_ns: 20.0,
                seconds: 1.0,
                pinned: true,
            },
            groups: vec![group("pool-map-c1"), group("pool-apply-rt")],
            lines: vec![
                line("pool-map-c1", "shm-process Pool(2).map", Who::Ours, 100.0),
                line("pool-map-c1", "Python mp.Pool(2).map", Who::Peer, 4000.0),
                line(
                    "pool-apply-rt",
                    "shm-process Pool(2).apply",
                    Who::Ours,
                    25_000.0,
                ),
            ],
        };
        let b = r.budget();
        assert_eq!(b.len(), 2, "only the checks of the tables that ran: {b:?}");
        let map = b.iter().find(|c| c.what.contains("chunksize 1")).unwrap();
        assert_eq!((map.value, map.met), (Some(40.0), Some(false)));
        assert_eq!(map.shown(), "40.00x");
        let apply = b.iter().find(|c| c.what.contains("apply")).unwrap();
        assert_eq!((apply.value, apply.met), (Some(25_000.0), Some(false)));
        assert!(!apply.ratio);
        assert_eq!(apply.shown(), fmt_ns(25_000.0));
        assert_eq!(apply.budget, format!("< {}", fmt_ns(20_000.0)));
    }
}
