//! The rows of the comparison: each table (a [`Group`]) and the cases measured in it.

use crate::error::{chain, BoxError, Failure};
use crate::harness::{Cfg, Child, Placement};
use shm_core::SegmentName;
use shm_process::Roles;

pub mod array;
pub mod bytes;
#[cfg(feature = "iceoryx2")]
pub mod iceoryx;
pub mod lock;
pub mod manager;
pub mod oneway;
pub mod pool;
pub mod python;
pub mod queue;
pub mod value;

/// What a table's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Time per operation; median and p99 of single operations (or of small batches).
    Latency,
    /// Time per message over large batches; shown with the rate. `bytes` per message for
    /// byte-message rows (shown as a byte rate).
    Throughput {
        /// Bytes per message, for a byte rate.
        bytes: Option<u64>,
    },
}

/// Whose implementation a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// One of ours (the first in a table is the reference of the ratios).
    Ours,
    /// A peer.
    Peer,
    /// A peer that is a lower bound of the mechanism (nothing can be faster).
    Floor,
    /// A peer that is an upper bound that ignores the process boundary (threads).
    Ceiling,
}

impl Who {
    /// Label for the tables.
    pub fn label(self) -> &'static str {
        match self {
            Who::Ours => "ours",
            Who::Peer => "peer",
            Who::Floor => "floor",
            Who::Ceiling => "ceiling",
        }
    }
}

/// One table.
#[derive(Debug, Clone)]
pub struct Group {
    /// Key for `--only` and JSON, e.g. `queue-rt-busy`.
    pub key: &'static str,
    /// Area for `--only`: `queue`, `bytes`, `lock`, `value`, `array`.
    pub area: &'static str,
    /// Title.
    pub title: &'static str,
    /// What one operation is.
    pub op: &'static str,
    /// The numbers' kind.
    pub kind: Kind,
    /// Columns.
    pub placements: &'static [Placement],
}

/// Two-process columns.
pub const TWO: &[Placement] = &[Placement::Split, Placement::Same];
/// One-process column.
pub const ONE: &[Placement] = &[Placement::Single];

/// Why a cell has no numbers.
#[derive(Debug, Clone)]
pub enum Miss {
    /// Not run here (Python missing, feature off, …): not an error.
    Skipped(String),
    /// It ran and failed: an error of the run.
    Failed(String),
}

impl From<String> for Miss {
    fn from(s: String) -> Miss {
        Miss::Failed(s)
    }
}

impl From<&str> for Miss {
    fn from(s: &str) -> Miss {
        Miss::Failed(s.to_owned())
    }
}

impl Miss {
    /// A failed cell, from any error (its causes kept in the message): for a step whose error
    /// `?` cannot convert into a `Miss` directly.
    pub fn failed(e: impl Into<BoxError>) -> Miss {
        Miss::from(e.into())
    }
}

impl From<BoxError> for Miss {
    fn from(e: BoxError) -> Miss {
        Miss::Failed(chain(&*e))
    }
}

impl From<Failure> for Miss {
    fn from(e: Failure) -> Miss {
        Miss::Failed(chain(&e))
    }
}

/// The measuring function of a case: samples in ns per operation for one placement.
pub type RunFn = Box<dyn Fn(&Cfg, Placement) -> Result<Vec<f64>, Miss>>;

/// One line of a table: an implementation measured in each of the table's columns.
pub struct Case {
    /// The table's key.
    pub group: &'static str,
    /// The implementation.
    pub line: String,
    /// Whose.
    pub who: Who,
    /// Wait strategy / how the sides wait, for the table.
    pub wait: &'static str,
    /// The measurement.
    pub run: RunFn,
    /// Measured in every sub-round (`Cfg::fine`), for a budget ratio: see [`Case::fine`].
    pub fine: bool,
}

impl Case {
    /// Marks the line as one side of a budget ratio: it is measured in `Cfg::fine` short
    /// sub-rounds per round instead of one, each time right beside the other lines of its
    /// table, so that the ratio can be taken pair by pair (see `report`).
    pub fn fine(mut self) -> Case {
        self.fine = true;
        self
    }
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("group", &self.group)
            .field("line", &self.line)
            .field("who", &self.who)
            .field("fine", &self.fine)
            .finish_non_exhaustive()
    }
}

/// Shorthand for building a [`Case`].
pub fn case(
    group: &'static str,
    line: impl Into<String>,
    who: Who,
    wait: &'static str,
    run: impl Fn(&Cfg, Placement) -> Result<Vec<f64>, Miss> + 'static,
) -> Case {
    Case {
        group,
        line: line.into(),
        who,
        wait,
        run: Box::new(run),
        fine: false,
    }
}

// ---- the child side and its parent's view of it: shared by every row --------------------

/// A child's result as its exit code, with the error (and its causes) on stderr.
pub fn exit<E: Into<BoxError>>(r: Result<(), E>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shm-bench child: {}", chain(&*e.into()));
            1
        }
    }
}

/// Joins the child after a measurement; a failed measurement kills it.
pub fn finish<E: Into<BoxError>>(child: Child, r: Result<Vec<f64>, E>) -> Result<Vec<f64>, Miss> {
    match r {
        Ok(v) => {
            child.finish()?;
            Ok(v)
        }
        Err(e) => {
            child.kill();
            Err(Miss::from(e.into()))
        }
    }
}

/// Child argument `i`.
pub fn arg(a: &[String], i: usize) -> Result<&str, Failure> {
    a.get(i)
        .map(String::as_str)
        .ok_or_else(|| Failure::msg(format!("missing child argument {i}")))
}

/// Child argument `i` as a number.
pub fn num(a: &[String], i: usize) -> Result<u64, Failure> {
    arg(a, i)?
        .parse()
        .map_err(|e| Failure::new(format!("bad number in argument {i}"), e))
}

/// A segment name passed to a child.
pub fn seg_name(s: &str) -> Result<SegmentName, Failure> {
    SegmentName::new(s).map_err(|e| Failure::new(format!("bad segment name {s}"), e))
}

/// Every table, in the order printed.
pub fn groups() -> Vec<Group> {
    let mut g = Vec::new();
    g.extend(queue::groups());
    g.extend(bytes::groups());
    g.extend(lock::groups());
    g.extend(value::groups());
    g.extend(array::groups());
    g.extend(manager::groups());
    g.extend(pool::groups());
    g
}

/// Every case, in the order run.
pub fn cases() -> Vec<Case> {
    let mut c = Vec::new();
    c.extend(queue::cases());
    c.extend(bytes::cases());
    c.extend(lock::cases());
    c.extend(value::cases());
    c.extend(array::cases());
    c.extend(manager::cases());
    c.extend(pool::cases());
    c
}

/// Registers every child role of every row.
pub fn roles(r: Roles) -> Roles {
    let r = queue::roles(r);
    let r = bytes::roles(r);
    let r = lock::roles(r);
    let r = value::roles(r);
    let r = array::roles(r);
    let r = manager::roles(r);
    pool::roles(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table keys are unique, every case has its table, no table has a line twice, and the
    /// first line of every table is ours (the reference of its ratios).
    #[test]
    fn groups_and_cases_match() {
        let g = groups();
        let c = cases();
        for (i, a) in g.iter().enumerate() {
            assert!(
                g[i + 1..].iter().all(|b| b.key != a.key),
                "table {} twice",
                a.key
            );
            let lines: Vec<&Case> = c.iter().filter(|c| c.group == a.key).collect();
            assert!(!lines.is_empty(), "table {} has no lines", a.key);
            assert_eq!(lines[0].who, Who::Ours, "first line of {}", a.key);
            for (j, l) in lines.iter().enumerate() {
                assert!(
                    lines[j + 1..].iter().all(|m| m.line != l.line),
                    "{} twice in {}",
                    l.line,
                    a.key
                );
            }
        }
        for case in &c {
            assert!(
                g.iter().any(|g| g.key == case.group),
                "{case:?} has no table"
            );
        }
    }
}
