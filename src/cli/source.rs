//! Where the tool's facts come from: shm-core's listing, users scan, liveness and removal.
//! Everything that asks the system goes through here (and through shm-core: the tool makes no
//! system calls of its own).

use super::model::{Creator, Entry, Liveness, State, Users};
use shm_core::{list_segments, Segment, SegmentInfo, SegmentName};
use std::fmt;

/// An error the tool reports with exit code 1.
#[derive(Debug)]
pub(crate) enum CliError {
    /// A name that cannot be a segment name.
    BadName {
        /// The argument as given.
        arg: String,
        /// Why.
        reason: String,
    },
    /// No such segment.
    NotFound {
        /// The name.
        name: String,
    },
    /// Something exists at the name but it is not an shm-ipc segment.
    NotOurs {
        /// The name.
        name: String,
    },
    /// The segment's header or body does not validate.
    Corrupt {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// `rm` refused.
    Refused {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Anything else the system said.
    Os {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::BadName { arg, reason } => write!(f, "{arg:?}: {reason}"),
            CliError::NotFound { name } => write!(f, "{name}: no such segment"),
            CliError::NotOurs { name } => write!(
                f,
                "{name}: not an shm-ipc segment (it does not start with shm-ipc's header)"
            ),
            CliError::Corrupt { name, reason } => write!(f, "{name}: corrupt segment: {reason}"),
            CliError::Refused { name, reason } => write!(f, "{name}: not removed: {reason}"),
            CliError::Os { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Validates a name given on the command line.
pub(crate) fn parse_name(arg: &std::ffi::OsStr) -> Result<SegmentName, CliError> {
    let shown = arg.to_string_lossy().into_owned();
    let Some(s) = arg.to_str() else {
        return Err(CliError::BadName {
            arg: shown,
            reason: "bad segment name: not valid UTF-8".into(),
        });
    };
    SegmentName::new(s).map_err(|e| {
        let mut reason = e.to_string();
        if s.starts_with("/dev/shm/") {
            reason.push_str(" (give the name without /dev/shm/)");
        }
        CliError::BadName { arg: shown, reason }
    })
}

/// Validates a `--prefix` (the start of a name: the same characters).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), CliError> {
    SegmentName::new(prefix)
        .map(|_| ())
        .map_err(|e| CliError::BadName {
            arg: prefix.into(),
            reason: format!("--prefix: {e}"),
        })
}

fn liveness_of(info: &SegmentInfo) -> Liveness {
    // TODO(core listing): take the three-way answer from shm-core once it lands.
    if info.creator_alive {
        Liveness::Alive
    } else {
        Liveness::Dead
    }
}

fn entry(info: SegmentInfo) -> Entry {
    let state = if info.ready {
        State::Ready
    } else {
        State::Unpublished {
            detail: "initialising".into(),
        }
    };
    Entry {
        name: info.name.as_str().to_owned(),
        kind: info.kind,
        format: info.format.clone(),
        count: info.count,
        size: info.file_len,
        creator: Some(Creator {
            pid: info.creator.pid(),
            liveness: liveness_of(&info),
        }),
        // TODO(core users scan): shm-core's scan of the processes that map the segment.
        users: Users::Unknown,
        age: None,
        state,
    }
}

/// Every segment (and leftover) whose name starts with `prefix`, sorted by name.
pub(crate) fn list(prefix: Option<&str>) -> Result<Vec<Entry>, CliError> {
    let infos = list_segments().map_err(|source| CliError::Os {
        what: "listing the shared-memory namespace".into(),
        source,
    })?;
    let mut out: Vec<Entry> = infos
        .into_iter()
        .filter(|i| prefix.is_none_or(|p| i.name.as_str().starts_with(p)))
        .map(entry)
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The entry for one name.
pub(crate) fn find(name: &SegmentName) -> Result<Entry, CliError> {
    let all = list(Some(name.as_str()))?;
    match all.into_iter().find(|e| e.name == name.as_str()) {
        Some(e) => Ok(e),
        None if Segment::exists(name) => Err(CliError::NotOurs {
            name: name.as_str().into(),
        }),
        None => Err(CliError::NotFound {
            name: name.as_str().into(),
        }),
    }
}

/// Removes the name.
pub(crate) fn remove(name: &SegmentName) -> Result<(), CliError> {
    Segment::unlink_name(name).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CliError::NotFound {
                name: name.as_str().into(),
            }
        } else {
            CliError::Os {
                what: format!("removing {}", name.as_str()),
                source,
            }
        }
    })
}
