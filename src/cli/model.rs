//! What the tool shows about a segment, and how it explains `gc`'s decisions (pure: no OS
//! calls, so the wording and the column rules are unit-tested here). The decisions themselves
//! are shm-core's ([`SegmentInfo::is_abandoned`](shm_core::SegmentInfo::is_abandoned),
//! [`remove`](shm_core::inventory::remove)): the tool never has a rule of its own about what is
//! safe to remove.

use shm_core::{Liveness, ObjectKind, SegmentInfo, SegmentState, Users};
use std::time::Duration;

/// Who created a segment, as its header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Creator {
    /// The creator's pid.
    pub(crate) pid: u32,
    /// Whether it still runs (`None`: not asked).
    pub(crate) liveness: Option<Liveness>,
}

/// One row of `ls`: the facts of a [`SegmentInfo`], in the tool's terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The name, without a leading slash.
    pub(crate) name: String,
    /// Published, unpublished, corrupt, foreign...
    pub(crate) state: SegmentState,
    /// The object kind (`None` without a valid header).
    pub(crate) kind: Option<ObjectKind>,
    /// The typecode or record format as stored, empty when unknown.
    pub(crate) format: String,
    /// Element count or capacity.
    pub(crate) count: Option<u64>,
    /// Bytes of the file.
    pub(crate) size: u64,
    /// The creator recorded in the header.
    pub(crate) creator: Option<Creator>,
    /// Processes that map the segment or hold it open.
    pub(crate) users: Users,
    /// Whether a handle holds the segment's lock (a live user even if no process was seen).
    pub(crate) locked: bool,
    /// Time since the file was last modified.
    pub(crate) age: Option<Duration>,
    /// shm-core's verdict: nobody uses it and its creator is dead (or it is a leftover).
    pub(crate) abandoned: bool,
}

impl Entry {
    /// The row for `info`.
    pub(crate) fn of(info: &SegmentInfo) -> Entry {
        Entry {
            name: info.name.as_str().to_owned(),
            state: info.state.clone(),
            kind: info.kind,
            format: info.format.clone(),
            count: info.count,
            size: info.file_len,
            creator: info.creator.map(|c| Creator {
                pid: c.pid(),
                liveness: info.creator_liveness,
            }),
            users: info.users.clone(),
            locked: info.locked,
            age: info.age,
            abandoned: info.is_abandoned(),
        }
    }

    /// Whether `ls` shows it without `--all`: shm-ipc segments and the leftovers of their
    /// creators, not other programs' files.
    pub(crate) fn is_ours(&self) -> bool {
        matches!(
            self.state,
            SegmentState::Ready | SegmentState::Corrupt { .. }
        ) || self.state.is_unpublished()
    }
}

/// One word for a state, for tables and JSON.
pub(crate) fn state_word(s: &SegmentState) -> &'static str {
    match s {
        SegmentState::Ready => "ready",
        SegmentState::Initialising => "initialising",
        SegmentState::Empty => "empty",
        SegmentState::NoHeader => "no-header",
        SegmentState::Corrupt { .. } => "corrupt",
        SegmentState::Foreign => "foreign",
        SegmentState::NotRegularFile { .. } => "not-a-file",
        SegmentState::Unreadable => "unreadable",
        _ => "unknown",
    }
}

/// The detail a state carries, if any.
pub(crate) fn state_detail(s: &SegmentState) -> Option<String> {
    match s {
        SegmentState::Corrupt { reason } => Some(reason.clone()),
        SegmentState::NotRegularFile { found } => Some((*found).to_owned()),
        SegmentState::Initialising => Some("never published".into()),
        SegmentState::Empty => Some("0 bytes, never published".into()),
        SegmentState::NoHeader => Some("no header written, never published".into()),
        _ => None,
    }
}

/// `-` for nobody, the pids, and `?` for processes that may be hidden.
pub(crate) fn users_column(u: &Users, locked: bool) -> String {
    let pids: Vec<String> = u.seen().iter().map(u32::to_string).collect();
    let mut s = pids.join(",");
    if matches!(u, Users::Unknown { .. }) || (locked && pids.is_empty()) {
        if !s.is_empty() {
            s.push(',');
        }
        s.push('?');
    }
    if s.is_empty() {
        s.push('-');
    }
    s
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

/// Why `gc` removes an entry (`Ok`) or keeps it (`Err`). The decision is
/// [`Entry::abandoned`]; this only says why in words.
pub(crate) fn gc_reason(e: &Entry) -> Result<String, String> {
    let creator = |c: &Creator| {
        format!(
            "creator {} is {}",
            c.pid,
            c.liveness.map_or("unknown".into(), |l| l.to_string())
        )
    };
    if e.abandoned {
        return Ok(match (&e.creator, e.state.is_unpublished()) {
            (Some(c), false) => format!("{}, nobody uses it", creator(c)),
            (Some(c), true) => format!("never published, {}, nobody uses it", creator(c)),
            (None, _) => format!(
                "{}, left for {}, nobody uses it",
                state_detail(&e.state).unwrap_or_else(|| state_word(&e.state).into()),
                e.age.map_or("?".into(), fmt_age)
            ),
        });
    }
    Err(if !e.is_ours() {
        format!("{}: not an shm-ipc segment", state_word(&e.state))
    } else if !e.users.seen().is_empty() {
        format!("in use by {}", users_column(&e.users, e.locked))
    } else if matches!(e.users, Users::Unknown { .. }) {
        "cannot tell which processes use it".into()
    } else if e.locked {
        "a handle holds its lock".into()
    } else if let Some(c) = e.creator.as_ref() {
        creator(c)
    } else {
        "its creator may still be writing it".into()
    })
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

    fn entry(
        users: Users,
        creator: Option<(u32, Liveness)>,
        state: SegmentState,
        abandoned: bool,
    ) -> Entry {
        Entry {
            name: "t".into(),
            state,
            kind: Some(ObjectKind::Lock),
            format: String::new(),
            count: Some(0),
            size: 288,
            creator: creator.map(|(pid, l)| Creator {
                pid,
                liveness: Some(l),
            }),
            users,
            locked: false,
            age: Some(Duration::from_secs(60)),
            abandoned,
        }
    }

    #[test]
    fn gc_reasons_say_why() {
        let dead = Some((7, Liveness::Dead));
        let none = Users::Known(vec![]);
        let r = gc_reason(&entry(none.clone(), dead, SegmentState::Ready, true)).unwrap();
        assert_eq!(r, "creator 7 is dead, nobody uses it");
        let r = gc_reason(&entry(none.clone(), dead, SegmentState::Initialising, true)).unwrap();
        assert!(r.starts_with("never published"), "{r}");
        let r = gc_reason(&entry(none.clone(), None, SegmentState::Empty, true)).unwrap();
        assert_eq!(r, "0 bytes, never published, left for 60s, nobody uses it");

        let r = gc_reason(&entry(
            Users::Known(vec![42, 43]),
            dead,
            SegmentState::Ready,
            false,
        ))
        .unwrap_err();
        assert_eq!(r, "in use by 42,43");
        let r = gc_reason(&entry(
            Users::Unknown { seen: vec![] },
            dead,
            SegmentState::Ready,
            false,
        ))
        .unwrap_err();
        assert_eq!(r, "cannot tell which processes use it");
        let r = gc_reason(&entry(
            none.clone(),
            Some((7, Liveness::Alive)),
            SegmentState::Ready,
            false,
        ))
        .unwrap_err();
        assert_eq!(r, "creator 7 is alive");
        let r = gc_reason(&entry(none.clone(), None, SegmentState::Foreign, false)).unwrap_err();
        assert!(r.contains("not an shm-ipc segment"), "{r}");
        let mut locked = entry(none, dead, SegmentState::Ready, false);
        locked.locked = true;
        assert_eq!(gc_reason(&locked).unwrap_err(), "a handle holds its lock");
    }

    #[test]
    fn ls_shows_ours_and_leftovers_only() {
        let e = |s| entry(Users::Known(vec![]), None, s, false);
        for s in [
            SegmentState::Ready,
            SegmentState::Initialising,
            SegmentState::Empty,
            SegmentState::NoHeader,
            SegmentState::Corrupt { reason: "x".into() },
        ] {
            assert!(e(s.clone()).is_ours(), "{s:?}");
        }
        for s in [
            SegmentState::Foreign,
            SegmentState::NotRegularFile { found: "fifo" },
            SegmentState::Unreadable,
        ] {
            assert!(!e(s.clone()).is_ours(), "{s:?}");
        }
    }

    #[test]
    fn columns() {
        assert_eq!(users_column(&Users::Known(vec![]), false), "-");
        assert_eq!(users_column(&Users::Known(vec![3, 4]), false), "3,4");
        assert_eq!(users_column(&Users::Unknown { seen: vec![] }, false), "?");
        assert_eq!(
            users_column(&Users::Unknown { seen: vec![5] }, false),
            "5,?"
        );
        assert_eq!(users_column(&Users::Known(vec![]), true), "?");
        assert_eq!(fmt_age(Duration::from_secs(5)), "5s");
        assert_eq!(fmt_age(Duration::from_secs(300)), "5m");
        assert_eq!(fmt_age(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(fmt_age(Duration::from_secs(4 * 86400)), "4d");
        assert_eq!(fmt_size(812), "812");
        assert_eq!(fmt_size(4096), "4.0K");
        assert_eq!(fmt_size(1536 * 1024), "1.5M");
        assert_eq!(state_word(&SegmentState::NoHeader), "no-header");
        assert!(has_elements(ObjectKind::Value) && !has_elements(ObjectKind::Lock));
    }
}
