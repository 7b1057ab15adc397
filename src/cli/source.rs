//! Where the tool's facts come from: shm-core's listing, users scan, liveness and removal.
//! Everything that asks the system goes through here (and through shm-core: the tool makes no
//! system calls of its own).

use super::model::Entry;
use shm_core::{InspectError, RemoveError, SegmentInfo, SegmentName, Users};
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

/// A listed name: the row to show and shm-core's description (which removal needs).
pub(crate) struct Listed {
    pub(crate) entry: Entry,
    pub(crate) info: SegmentInfo,
}

impl Listed {
    fn of(info: SegmentInfo) -> Listed {
        Listed {
            entry: Entry::of(&info),
            info,
        }
    }
}

/// The names that start with `prefix` (sorted): shm-ipc segments and leftovers, and with
/// `all` every other file in the namespace too.
pub(crate) fn list(prefix: Option<&str>, all: bool) -> Result<Vec<Listed>, CliError> {
    let infos = shm_core::list_segments().map_err(|source| CliError::Os {
        what: "listing the shared-memory namespace".into(),
        source,
    })?;
    Ok(infos
        .into_iter()
        .filter(|i| prefix.is_none_or(|p| i.name.as_str().starts_with(p)))
        .map(Listed::of)
        .filter(|l| all || l.entry.is_ours())
        .collect())
}

/// The description of one name.
pub(crate) fn find(name: &SegmentName) -> Result<Listed, CliError> {
    match shm_core::inspect(name) {
        Ok(info) => Ok(Listed::of(info)),
        Err(InspectError::NotFound { .. }) => Err(CliError::NotFound {
            name: name.as_str().into(),
        }),
        Err(InspectError::Io { op, source }) => Err(CliError::Os {
            what: format!("looking at {} ({op})", name.as_str()),
            source,
        }),
        Err(e) => Err(CliError::Os {
            what: format!("looking at {}", name.as_str()),
            source: std::io::Error::other(e),
        }),
    }
}

/// Removes the listed name: only if nobody uses it and it is still the file that was listed,
/// or whatever it is and whoever uses it when `force`d.
pub(crate) fn remove(l: &Listed, force: bool) -> Result<(), CliError> {
    let name = l.entry.name.clone();
    let result = if force {
        l.info.remove_forced()
    } else {
        l.info.remove()
    };
    result.map_err(|e| match e {
        RemoveError::NotFound { .. } => CliError::NotFound { name },
        RemoveError::InUse { users, locked, .. } => CliError::Refused {
            name,
            reason: format!(
                "in use by {}{} (--force removes it anyway)",
                match &users {
                    Users::Known(p) if p.len() == 1 => "process ",
                    _ => "processes ",
                },
                super::model::users_column(&users, locked)
            ),
        },
        RemoveError::Changed { .. } => CliError::Refused {
            name,
            reason: "it was re-created since it was looked at; try again".into(),
        },
        RemoveError::NotRegularFile { found, .. } => CliError::Refused {
            name,
            reason: format!("it is a {found}, not a segment (--force removes it anyway)"),
        },
        RemoveError::PermissionDenied { source, .. } => CliError::Os {
            what: format!("removing {name}"),
            source,
        },
        RemoveError::Io { op, source } => CliError::Os {
            what: format!("removing {name} ({op})"),
            source,
        },
        other => CliError::Os {
            what: format!("removing {name}"),
            source: std::io::Error::other(other),
        },
    })
}
