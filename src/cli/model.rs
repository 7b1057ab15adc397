//! What the tool knows about a segment, and the cleanup policy over it (pure: no OS calls, so
//! the rules are unit-tested here).

use shm_core::ObjectKind;
use std::fmt;
use std::time::Duration;

/// Stand-in for `shm_core::Liveness` until the core-interface commit lands in main.
/// TODO(core-interface): replace with `pub(crate) use shm_core::Liveness;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Runs.
    Alive,
    /// Gone.
    Dead,
    /// Cannot be told.
    Unknown,
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Unknown => "unknown",
        })
    }
}

/// Which live processes map a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Users {
    /// These processes (possibly none).
    Known(Vec<u32>),
    /// Could not be told (no `/proc`, or processes of other users are hidden).
    Unknown,
}

impl fmt::Display for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Users::Unknown => f.write_str("?"),
            Users::Known(p) if p.is_empty() => f.write_str("-"),
            Users::Known(p) => {
                for (i, pid) in p.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{pid}")?;
                }
                Ok(())
            }
        }
    }
}

/// The state of the file behind a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Published by its creator and its header validates.
    Ready,
    /// Not (yet) published: a 0-byte or all-zero file, or a header whose state word still says
    /// the creator is initialising. A creator killed mid-create leaves one of these.
    Unpublished {
        /// What was found ("0 bytes", "all zero", "initialising").
        detail: String,
    },
    /// Ours (or meant to be) but its header does not validate.
    Corrupt {
        /// Why.
        reason: String,
    },
}

impl State {
    /// One word for tables and JSON.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Unpublished { .. } => "unpublished",
            State::Corrupt { .. } => "corrupt",
        }
    }

    /// The detail, if any.
    pub(crate) fn detail(&self) -> Option<&str> {
        match self {
            State::Ready => None,
            State::Unpublished { detail } => Some(detail),
            State::Corrupt { reason } => Some(reason),
        }
    }
}

/// Who created a segment, as its header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Creator {
    /// The creator's pid.
    pub(crate) pid: u32,
    /// Whether it still runs.
    pub(crate) liveness: Liveness,
}

/// One row of `ls`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The name, without a leading slash.
    pub(crate) name: String,
    /// Published, unpublished or corrupt.
    pub(crate) state: State,
    /// The object kind (`None` when unpublished or unknown).
    pub(crate) kind: Option<ObjectKind>,
    /// The typecode (`'i'`) or record format, empty when unknown.
    pub(crate) format: String,
    /// Element count or capacity from the header (0 when unknown).
    pub(crate) count: u64,
    /// Bytes of the file.
    pub(crate) size: u64,
    /// The creator recorded in the header (`None` when the header holds none).
    pub(crate) creator: Option<Creator>,
    /// Live processes that map it.
    pub(crate) users: Users,
    /// Time since the file was last modified, if known.
    pub(crate) age: Option<Duration>,
}

/// How long an unpublished file without a recorded creator must have been left alone before
/// `gc` calls it a leftover: a live creator publishes within microseconds, and a crashed one
/// never does.
pub(crate) const UNPUBLISHED_GRACE: Duration = Duration::from_secs(2);

/// What `gc` does with one entry, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Remove it.
    Remove(String),
    /// Leave it.
    Keep(String),
}

impl Verdict {
    /// Whether the entry goes.
    pub(crate) fn removes(&self) -> bool {
        matches!(self, Verdict::Remove(_))
    }

    /// The reason.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Verdict::Remove(r) | Verdict::Keep(r) => r,
        }
    }
}

/// The `gc` rule: a segment goes only when it is known that no live process maps it, and its
/// creator is known to be dead (or, for an unpublished file that records no creator, when it
/// has been left alone for `grace`). Anything unknown is kept.
pub(crate) fn gc_verdict(e: &Entry, grace: Duration) -> Verdict {
    match &e.users {
        Users::Unknown => {
            return Verdict::Keep("cannot tell which processes map it".into());
        }
        Users::Known(p) if !p.is_empty() => {
            return Verdict::Keep(format!("in use by {}", e.users));
        }
        Users::Known(_) => {}
    }
    match e.creator {
        Some(Creator {
            pid,
            liveness: Liveness::Dead,
        }) => Verdict::Remove(match e.state {
            State::Ready => format!("creator {pid} is dead and nobody maps it"),
            State::Unpublished { .. } => {
                format!("creator {pid} died before publishing it and nobody maps it")
            }
            State::Corrupt { .. } => format!("corrupt, creator {pid} is dead, nobody maps it"),
        }),
        Some(Creator {
            pid,
            liveness: Liveness::Alive,
        }) => Verdict::Keep(format!("creator {pid} is alive")),
        Some(Creator { pid, .. }) => {
            Verdict::Keep(format!("cannot tell whether creator {pid} is alive"))
        }
        None => match (&e.state, e.age) {
            (State::Ready, _) => Verdict::Keep("no creator recorded".into()),
            (_, Some(age)) if age >= grace => Verdict::Remove(format!(
                "{} for {}, no creator recorded, nobody maps it",
                e.state.word(),
                fmt_age(age)
            )),
            (_, Some(_)) => Verdict::Keep(format!(
                "{} for less than {}: its creator may still be writing it",
                e.state.word(),
                fmt_age(grace)
            )),
            (_, None) => Verdict::Keep(format!("{}, age unknown", e.state.word())),
        },
    }
}

/// What `rm` (without `--force`) refuses, or `None` if it may remove the entry.
pub(crate) fn rm_refusal(e: &Entry) -> Option<String> {
    match &e.users {
        Users::Unknown => Some(
            "cannot tell whether live processes map it (use --force to remove it anyway)".into(),
        ),
        Users::Known(p) if !p.is_empty() => Some(format!(
            "in use by {} {} (use --force to remove it anyway)",
            if p.len() == 1 { "process" } else { "processes" },
            e.users
        )),
        Users::Known(_) => None,
    }
}

/// Whether objects of `kind` hold typed elements (the header's layout means something).
pub(crate) fn has_elements(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Value
            | ObjectKind::RawValue
            | ObjectKind::Array
            | ObjectKind::RawArray
            | ObjectKind::SpscQueue
            | ObjectKind::MpmcQueue
    )
}

/// `5s`, `3m`, `2h`, `4d`.
pub(crate) fn fmt_age(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s}s")
    } else if s < 120 * 60 {
        format!("{}m", s / 60)
    } else if s < 48 * 3600 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86400)
    }
}

/// `812`, `4.0K`, `1.5M` (binary units).
pub(crate) fn fmt_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return n.to_string();
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1}{}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(users: Users, creator: Option<(u32, Liveness)>, state: State) -> Entry {
        Entry {
            name: "t".into(),
            state,
            kind: Some(ObjectKind::Lock),
            format: String::new(),
            count: 0,
            size: 288,
            creator: creator.map(|(pid, liveness)| Creator { pid, liveness }),
            users,
            age: Some(Duration::from_secs(60)),
        }
    }

    const G: Duration = UNPUBLISHED_GRACE;

    #[test]
    fn gc_removes_only_unused_segments_of_dead_creators() {
        let dead = Some((7, Liveness::Dead));
        let e = entry(Users::Known(vec![]), dead, State::Ready);
        assert!(gc_verdict(&e, G).removes());
        let e = entry(
            Users::Known(vec![]),
            dead,
            State::Unpublished {
                detail: "initialising".into(),
            },
        );
        assert!(gc_verdict(&e, G).removes());
        let e = entry(
            Users::Known(vec![]),
            dead,
            State::Corrupt {
                reason: "bad checksum".into(),
            },
        );
        assert!(gc_verdict(&e, G).removes());
    }

    #[test]
    fn gc_never_removes_what_is_in_use_or_unknown() {
        for creator in [
            Some((7, Liveness::Dead)),
            Some((7, Liveness::Alive)),
            Some((7, Liveness::Unknown)),
            None,
        ] {
            let v = gc_verdict(&entry(Users::Known(vec![42]), creator, State::Ready), G);
            assert!(!v.removes(), "{v:?}");
            assert!(v.reason().contains("42"), "{v:?}");
            let v = gc_verdict(&entry(Users::Unknown, creator, State::Ready), G);
            assert!(!v.removes(), "{v:?}");
        }
        // Nobody maps it, but the creator is alive or cannot be told.
        let v = gc_verdict(
            &entry(
                Users::Known(vec![]),
                Some((7, Liveness::Alive)),
                State::Ready,
            ),
            G,
        );
        assert!(!v.removes());
        let v = gc_verdict(
            &entry(
                Users::Known(vec![]),
                Some((7, Liveness::Unknown)),
                State::Ready,
            ),
            G,
        );
        assert!(!v.removes());
        // A published segment that records no creator is never guessed at.
        assert!(!gc_verdict(&entry(Users::Known(vec![]), None, State::Ready), G).removes());
    }

    #[test]
    fn gc_removes_unpublished_leftovers_only_after_the_grace_time() {
        let unpublished = State::Unpublished {
            detail: "0 bytes".into(),
        };
        let mut e = entry(Users::Known(vec![]), None, unpublished);
        e.age = Some(Duration::from_secs(1));
        assert!(!gc_verdict(&e, G).removes());
        e.age = Some(G);
        assert!(gc_verdict(&e, G).removes());
        e.age = None;
        assert!(!gc_verdict(&e, G).removes());
        e.age = Some(Duration::ZERO);
        assert!(gc_verdict(&e, Duration::ZERO).removes());
    }

    #[test]
    fn rm_refuses_segments_in_use_or_unknown() {
        let dead = Some((7, Liveness::Dead));
        let r = rm_refusal(&entry(Users::Known(vec![1, 2]), dead, State::Ready)).unwrap();
        assert!(r.contains("processes 1,2") && r.contains("--force"), "{r}");
        assert!(rm_refusal(&entry(Users::Unknown, dead, State::Ready)).is_some());
        assert!(rm_refusal(&entry(Users::Known(vec![]), dead, State::Ready)).is_none());
        // The creator's liveness does not matter to rm: only current users do.
        let alive = Some((7, Liveness::Alive));
        assert!(rm_refusal(&entry(Users::Known(vec![]), alive, State::Ready)).is_none());
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_age(Duration::from_secs(5)), "5s");
        assert_eq!(fmt_age(Duration::from_secs(300)), "5m");
        assert_eq!(fmt_age(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(fmt_age(Duration::from_secs(4 * 86400)), "4d");
        assert_eq!(fmt_size(812), "812");
        assert_eq!(fmt_size(4096), "4.0K");
        assert_eq!(fmt_size(1536 * 1024), "1.5M");
        assert_eq!(Users::Known(vec![]).to_string(), "-");
        assert_eq!(Users::Known(vec![3, 4]).to_string(), "3,4");
        assert_eq!(Users::Unknown.to_string(), "?");
    }
}
