//! Command-line parsing (hand-rolled: four commands and a handful of flags).

use std::ffi::OsString;
use std::fmt;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// `ls [--prefix P] [--all]`
    Ls {
        /// Only names that start with this.
        prefix: Option<String>,
        /// Other programs' files too.
        all: bool,
    },
    /// `inspect NAME`
    Inspect {
        /// The segment.
        name: OsString,
    },
    /// `rm NAME... [--force]`
    Rm {
        /// The segments.
        names: Vec<OsString>,
        /// Remove even what live processes use.
        force: bool,
    },
    /// `gc [--dry-run] [--prefix P]`
    Gc {
        /// Only say what would be removed.
        dry_run: bool,
        /// Only names that start with this.
        prefix: Option<String>,
    },
    /// `help [COMMAND]`, `--help`, `-h`
    Help(Option<String>),
    /// `--version`, `-V`
    Version,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// `--json`: machine-readable output.
    pub(crate) json: bool,
    /// The command.
    pub(crate) command: Command,
}

/// A command line that cannot be understood (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UsageError {
    pub(crate) message: String,
    /// The command whose usage to show, if known.
    pub(crate) command: Option<&'static str>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn usage(message: impl Into<String>, command: Option<&'static str>) -> UsageError {
    UsageError {
        message: message.into(),
        command,
    }
}

/// The commands, for usage messages.
pub(crate) const COMMANDS: [&str; 4] = ["ls", "inspect", "rm", "gc"];

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let mut json = false;
    let mut help = false;
    let mut command: Option<&'static str> = None;
    let mut positional: Vec<OsString> = Vec::new();
    let mut prefix: Option<String> = None;
    let mut force = false;
    let mut dry_run = false;
    let mut all = false;
    let mut only_positional = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let flag = if only_positional {
            None
        } else {
            arg.to_str().filter(|s| s.starts_with('-') && s.len() > 1)
        };
        let Some(flag) = flag else {
            if command.is_none() {
                let word = arg.to_string_lossy();
                command = Some(match word.as_ref() {
                    "ls" | "list" => "ls",
                    "inspect" | "show" => "inspect",
                    "rm" | "remove" => "rm",
                    "gc" => "gc",
                    "help" => "help",
                    other => {
                        return Err(usage(
                            format!(
                                "unknown command {other:?}: expected one of {}",
                                COMMANDS.join(", ")
                            ),
                            None,
                        ))
                    }
                });
            } else {
                positional.push(arg);
            }
            continue;
        };
        // `--flag=value` or `--flag value`.
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (flag, None),
        };
        let mut value = |what: &str| -> Result<String, UsageError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            match it.next() {
                Some(v) => v
                    .into_string()
                    .map_err(|v| usage(format!("{what}: {v:?} is not valid UTF-8"), command)),
                None => Err(usage(format!("{flag} needs a value"), command)),
            }
        };
        let takes_value = flag == "--prefix";
        if inline.is_some() && !takes_value {
            return Err(usage(format!("{flag} takes no value"), command));
        }
        match flag {
            "--" => only_positional = true,
            "--json" => json = true,
            "-h" | "--help" => help = true,
            "-V" | "--version" => {
                return Ok(Invocation {
                    json,
                    command: Command::Version,
                })
            }
            "--force" | "-f" if command == Some("rm") => force = true,
            "--dry-run" | "-n" if command == Some("gc") => dry_run = true,
            "--prefix" if matches!(command, Some("ls" | "gc")) => {
                prefix = Some(value("--prefix")?);
            }
            "--all" | "-a" if command == Some("ls") => all = true,
            other => {
                return Err(usage(
                    match command {
                        Some(c) => format!("unknown option {other:?} for `{c}`"),
                        None => format!("unknown option {other:?}"),
                    },
                    command,
                ))
            }
        }
    }
    if help {
        return Ok(Invocation {
            json,
            command: Command::Help(command.filter(|c| *c != "help").map(str::to_owned)),
        });
    }
    let no_more = |positional: &[OsString], c: &'static str| -> Result<(), UsageError> {
        match positional.first() {
            Some(extra) => Err(usage(
                format!(
                    "unexpected argument {:?} for `{c}`",
                    extra.to_string_lossy()
                ),
                Some(c),
            )),
            None => Ok(()),
        }
    };
    let command = match command {
        None => return Err(usage("no command given", None)),
        Some("help") => {
            let topic = positional.first().map(|t| t.to_string_lossy().into_owned());
            if let Some(t) = &topic {
                if !COMMANDS.contains(&t.as_str()) {
                    return Err(usage(
                        format!("no help for {t:?}: expected one of {}", COMMANDS.join(", ")),
                        None,
                    ));
                }
            }
            Command::Help(topic)
        }
        Some("ls") => {
            no_more(&positional, "ls")?;
            Command::Ls { prefix, all }
        }
        Some("inspect") => {
            let mut p = positional.into_iter();
            let name = p
                .next()
                .ok_or_else(|| usage("`inspect` needs a segment name", Some("inspect")))?;
            no_more(&p.collect::<Vec<_>>(), "inspect")?;
            Command::Inspect { name }
        }
        Some("rm") => {
            if positional.is_empty() {
                return Err(usage("`rm` needs at least one segment name", Some("rm")));
            }
            Command::Rm {
                names: positional,
                force,
            }
        }
        Some("gc") => {
            no_more(&positional, "gc")?;
            Command::Gc { dry_run, prefix }
        }
        Some(_) => unreachable!("every command word is matched above"),
    };
    Ok(Invocation { json, command })
}

/// The help text: the whole tool, or one command.
pub(crate) fn help(topic: Option<&str>) -> String {
    match topic {
        Some("ls") => "\
usage: shm-ipc [--json] ls [--prefix P] [--all]

Lists the shm-ipc segments in the shared-memory namespace, and the files a creator left
unpublished (killed mid-create: a 0-byte, all-zero or half-written file) or corrupt.

Columns: NAME, KIND, TYPE (typecode or record format), COUNT (elements or capacity), SIZE
(bytes of the file), CREATOR (pid and alive/dead/unknown), USERS (pids of the processes that
map it or hold it open; `-` none, `?` some cannot be seen), AGE (since the file was last
modified), STATE (ready, initialising, empty, no-header, corrupt; with --all also foreign,
not-a-file, unreadable).

  --prefix P   only names that start with P
  -a, --all    other programs' files in the namespace too
  --json       one JSON document: {\"segments\": [...]}
"
        .into(),
        Some("inspect") => "\
usage: shm-ipc [--json] inspect NAME

Shows a segment's header fields and its object's live state: a lock's holder and whether it
is alive, a value, a semaphore's count, a barrier's parties and waiters, a queue's length and
its role holders. NAME is written without /dev/shm (a leading `/` is allowed).

  --json       one JSON document
"
        .into(),
        Some("rm") => "\
usage: shm-ipc [--json] rm [--force] NAME...

Removes segments. A segment that live processes map or hold open (or whose users cannot
all be seen), and a file that is not an shm-ipc segment, are refused unless --force is given.
Processes that map a removed segment keep their mapping, but nobody can open it by name any
more.

  -f, --force  remove it anyway
  --json       one JSON document: {\"removed\": [...], \"failed\": [{\"name\", \"error\"}]}
"
        .into(),
        Some("gc") => "\
usage: shm-ipc [--json] gc [--dry-run] [--prefix P]

Removes what crashed processes left behind: segments that no process maps or holds open and
whose creator is dead, and files their creators never published (a creator that is dead, or,
for a file too short to name its creator, one left alone for 2 seconds). Never removes a
segment in use, one whose users or creator cannot be told, one whose creator is alive, or
another program's file.

  -n, --dry-run  only say what would be removed
  --prefix P     only names that start with P
  --json         one JSON document: {\"removed\": [...], \"kept\": [...]}
"
        .into(),
        _ => format!(
            "\
shm-ipc {}: list, inspect and clean up shm-ipc shared-memory segments

usage: shm-ipc [--json] <command> [options]

commands:
  ls [--prefix P] [--all]         list segments, their creators and users
  inspect NAME                    header and live state of one segment
  rm [--force] NAME...            remove segments (refuses ones in use)
  gc [--dry-run] [--prefix P]     remove what dead processes left and nobody uses
  help [COMMAND]                  this text, or a command's

options:
  --json         machine-readable output (JSON on stdout)
  -h, --help     help
  -V, --version  version

exit codes: 0 success; 1 error (bad or missing name, corrupt segment, refused removal,
partial failure); 2 usage error.
",
            env!("CARGO_PKG_VERSION")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(
            p(&["ls"]).unwrap(),
            Invocation {
                json: false,
                command: Command::Ls {
                    prefix: None,
                    all: false
                }
            }
        );
        assert_eq!(
            p(&["--json", "ls", "--prefix", "ab"]).unwrap(),
            Invocation {
                json: true,
                command: Command::Ls {
                    prefix: Some("ab".into()),
                    all: false
                }
            }
        );
        assert_eq!(
            p(&["ls", "--prefix=ab", "--json", "-a"]).unwrap().command,
            Command::Ls {
                prefix: Some("ab".into()),
                all: true
            }
        );
        assert_eq!(
            p(&["inspect", "/x"]).unwrap().command,
            Command::Inspect { name: "/x".into() }
        );
        assert_eq!(
            p(&["rm", "a", "b", "--force"]).unwrap().command,
            Command::Rm {
                names: vec!["a".into(), "b".into()],
                force: true
            }
        );
        assert_eq!(
            p(&["gc", "-n", "--prefix", "t"]).unwrap().command,
            Command::Gc {
                dry_run: true,
                prefix: Some("t".into()),
            }
        );
        assert_eq!(
            p(&["gc"]).unwrap().command,
            Command::Gc {
                dry_run: false,
                prefix: None,
            }
        );
        // `--` ends the options: a name may start with a dash.
        assert_eq!(
            p(&["rm", "--", "-odd"]).unwrap().command,
            Command::Rm {
                names: vec!["-odd".into()],
                force: false
            }
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(p(&["--help"]).unwrap().command, Command::Help(None));
        assert_eq!(p(&["-h"]).unwrap().command, Command::Help(None));
        assert_eq!(p(&["help"]).unwrap().command, Command::Help(None));
        assert_eq!(
            p(&["help", "gc"]).unwrap().command,
            Command::Help(Some("gc".into()))
        );
        assert_eq!(
            p(&["rm", "--help"]).unwrap().command,
            Command::Help(Some("rm".into()))
        );
        assert_eq!(p(&["-V"]).unwrap().command, Command::Version);
        for topic in [None, Some("ls"), Some("inspect"), Some("rm"), Some("gc")] {
            assert!(help(topic).starts_with(if topic.is_some() { "usage:" } else { "shm-ipc" }));
        }
        assert!(help(None).contains("exit codes"));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["frobnicate"],
            &["ls", "extra"],
            &["ls", "--force"],
            &["rm"],
            &["rm", "x", "--dry-run"],
            &["inspect"],
            &["inspect", "a", "b"],
            &["gc", "--prefix"],
            &["gc", "--all"],
            &["gc", "--dry-run=yes"],
            &["--bogus"],
            &["help", "nope"],
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be a usage error");
        }
        let e = p(&["ls", "--force"]).unwrap_err();
        assert!(
            e.message.contains("--force") && e.message.contains("ls"),
            "{e}"
        );
        assert_eq!(e.command, Some("ls"));
    }
}
