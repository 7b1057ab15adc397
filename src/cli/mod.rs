//! The `shm-ipc` command-line tool: list, inspect, remove and clean up segments.
//!
//! [`run`] takes the arguments and two writers and returns the exit code, so the whole tool is
//! testable in-process; `main` only wires it to the real ones.

mod args;
mod model;
mod source;
mod state;

use args::{Command, Invocation};
use model::{gc_verdict, rm_refusal, Entry, State, Users};
use serde_json::{json, Value as Json};
use source::CliError;
use std::ffi::OsString;
use std::io::{self, Write};
use std::time::Duration;

/// Exit code: success.
pub(crate) const EXIT_OK: i32 = 0;
/// Exit code: an error (bad or missing name, corrupt segment, refused removal).
pub(crate) const EXIT_ERROR: i32 = 1;
/// Exit code: the command line could not be understood.
pub(crate) const EXIT_USAGE: i32 = 2;

/// Runs the tool with `args` (without the program name), writing results to `out` and
/// diagnostics to `err`; returns the exit code.
pub(crate) fn run(
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let inv = match args::parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            let _ = writeln!(err, "shm-ipc: {e}");
            let _ = match e.command {
                Some(c) => writeln!(err, "run `shm-ipc help {c}` for its usage"),
                None => writeln!(err, "run `shm-ipc --help` for usage"),
            };
            return EXIT_USAGE;
        }
    };
    match execute(&inv, out, err) {
        Ok(code) => code,
        Err(Failure::Cli(e)) => {
            let _ = writeln!(err, "shm-ipc: {e}");
            EXIT_ERROR
        }
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(Failure::Output(e)) => {
            let _ = writeln!(err, "shm-ipc: writing output: {e}");
            EXIT_ERROR
        }
    }
}

/// Why a command stopped.
enum Failure {
    Cli(CliError),
    Output(io::Error),
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Self {
        Failure::Cli(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

fn execute(inv: &Invocation, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, Failure> {
    match &inv.command {
        Command::Help(topic) => {
            out.write_all(args::help(topic.as_deref()).as_bytes())?;
            Ok(EXIT_OK)
        }
        Command::Version => {
            writeln!(out, "shm-ipc {}", env!("CARGO_PKG_VERSION"))?;
            Ok(EXIT_OK)
        }
        Command::Ls { prefix } => ls(inv.json, prefix.as_deref(), out),
        Command::Inspect { name } => inspect(inv.json, name, out),
        Command::Rm { names, force } => rm(inv.json, names, *force, out, err),
        Command::Gc {
            dry_run,
            prefix,
            grace,
        } => gc(inv.json, *dry_run, prefix.as_deref(), *grace, out, err),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn type_column(e: &Entry) -> String {
    if !e.kind.is_some_and(model::has_elements) {
        return "-".into();
    }
    match e.format.as_str() {
        "" => "-".into(),
        f if f.len() == 1 => format!("'{f}'"),
        f => f.into(),
    }
}

fn creator_column(e: &Entry) -> String {
    match e.creator {
        Some(c) => format!("{} {}", c.pid, c.liveness),
        None => "-".into(),
    }
}

fn state_column(e: &Entry) -> String {
    match e.state.detail() {
        Some(d) => format!("{} ({d})", e.state.word()),
        None => e.state.word().into(),
    }
}

fn entry_json(e: &Entry) -> Json {
    json!({
        "name": e.name,
        "state": e.state.word(),
        "detail": e.state.detail(),
        "kind": e.kind.map(|k| k.to_string()),
        "format": (!e.format.is_empty() && e.kind.is_some_and(model::has_elements))
            .then_some(&e.format),
        "count": e.count,
        "size": e.size,
        "creator": e.creator.map(|c| json!({"pid": c.pid, "liveness": c.liveness.to_string()})),
        "users": users_json(&e.users),
        "age_secs": e.age.map(|a| a.as_secs_f64()),
    })
}

fn users_json(u: &Users) -> Json {
    match u {
        Users::Known(p) => json!(p),
        Users::Unknown => Json::Null,
    }
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < last {
                let pad = widths[i] - c.chars().count() + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    s
}

fn json_out(out: &mut dyn Write, v: &Json) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v).map_err(io::Error::other)?;
    writeln!(out)
}

// ---------------------------------------------------------------------------------------------
// Commands

fn checked_prefix(prefix: Option<&str>) -> Result<(), CliError> {
    match prefix {
        Some(p) => source::check_prefix(p),
        None => Ok(()),
    }
}

fn ls(json: bool, prefix: Option<&str>, out: &mut dyn Write) -> Result<i32, Failure> {
    checked_prefix(prefix)?;
    let entries = source::list(prefix)?;
    if json {
        let list: Vec<Json> = entries.iter().map(entry_json).collect();
        json_out(out, &json!({ "segments": list }))?;
        return Ok(EXIT_OK);
    }
    if entries.is_empty() {
        writeln!(out, "no segments")?;
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.kind.map_or("-".into(), |k| k.to_string()),
                type_column(e),
                e.count.to_string(),
                model::fmt_size(e.size),
                creator_column(e),
                e.users.to_string(),
                e.age.map_or("-".into(), model::fmt_age),
                state_column(e),
            ]
        })
        .collect();
    out.write_all(
        table(
            &[
                "NAME", "KIND", "TYPE", "COUNT", "SIZE", "CREATOR", "USERS", "AGE", "STATE",
            ],
            &rows,
        )
        .as_bytes(),
    )?;
    Ok(EXIT_OK)
}

fn inspect(json: bool, arg: &OsString, out: &mut dyn Write) -> Result<i32, Failure> {
    let name = source::parse_name(arg)?;
    let entry = source::find(&name)?;
    let mut fields: state::Fields = Vec::new();
    match &entry.state {
        State::Corrupt { reason } => {
            return Err(CliError::Corrupt {
                name: entry.name.clone(),
                reason: reason.clone(),
            }
            .into())
        }
        State::Unpublished { detail } => {
            fields.push(("name", json!(entry.name)));
            fields.push(("state", json!("unpublished")));
            fields.push(("detail", json!(detail)));
            fields.push(("file_size", json!(entry.size)));
            if let Some(c) = entry.creator {
                fields.push(("creator_pid", json!(c.pid)));
                fields.push(("creator", json!(c.liveness.to_string())));
            }
        }
        State::Ready => {
            let kind = entry.kind.ok_or_else(|| CliError::Corrupt {
                name: entry.name.clone(),
                reason: "unknown object kind".into(),
            })?;
            let seg = shm_core::Segment::builder(&name, kind)
                .timeout(Duration::from_millis(300))
                .open()
                .map_err(|e| CliError::Corrupt {
                    name: entry.name.clone(),
                    reason: e.to_string(),
                })?;
            fields.extend(state::header_fields(&entry, &seg));
            fields.push(("users", users_json(&entry.users)));
            if let Some(age) = entry.age {
                fields.push(("age_secs", json!(age.as_secs_f64())));
            }
            let live = state::live_fields(&name, &seg)?;
            if json {
                let mut obj = serde_json::Map::new();
                for (k, v) in fields {
                    obj.insert(k.into(), v);
                }
                let mut l = serde_json::Map::new();
                for (k, v) in live {
                    l.insert(k.into(), v);
                }
                obj.insert("live".into(), Json::Object(l));
                json_out(out, &Json::Object(obj))?;
                return Ok(EXIT_OK);
            }
            print_fields(out, &fields)?;
            if !live.is_empty() {
                writeln!(out, "live state:")?;
                let indented: Vec<(String, Json)> = live
                    .into_iter()
                    .map(|(k, v)| (format!("  {k}"), v))
                    .collect();
                print_fields(out, &indented)?;
            }
            return Ok(EXIT_OK);
        }
    }
    if json {
        let obj: serde_json::Map<String, Json> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        json_out(out, &Json::Object(obj))?;
    } else {
        print_fields(out, &fields)?;
    }
    Ok(EXIT_OK)
}

fn print_fields<K: AsRef<str>>(out: &mut dyn Write, fields: &[(K, Json)]) -> io::Result<()> {
    let width = fields
        .iter()
        .map(|(k, _)| k.as_ref().len())
        .max()
        .unwrap_or(0);
    for (k, v) in fields {
        let v = match v {
            Json::String(s) => s.clone(),
            Json::Null => "-".into(),
            Json::Array(a) if a.iter().all(|x| !x.is_object()) => a
                .iter()
                .map(|x| match x {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        writeln!(
            out,
            "{:width$}  {v}",
            format!("{}:", k.as_ref()),
            width = width + 1
        )?;
    }
    Ok(())
}

fn rm(
    json: bool,
    names: &[OsString],
    force: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Failure> {
    let mut removed = Vec::new();
    let mut failed: Vec<(String, CliError)> = Vec::new();
    for arg in names {
        let shown = arg.to_string_lossy().into_owned();
        let result = source::parse_name(arg).and_then(|name| {
            match source::find(&name) {
                Ok(entry) => {
                    if !force {
                        if let Some(reason) = rm_refusal(&entry) {
                            return Err(CliError::Refused {
                                name: entry.name,
                                reason,
                            });
                        }
                    }
                }
                // Not ours: only with --force.
                Err(CliError::NotOurs { name: n }) if force => {
                    let _ = n;
                }
                Err(e) => return Err(e),
            }
            source::remove(&name).map(|()| name.as_str().to_owned())
        });
        match result {
            Ok(n) => {
                if !json {
                    writeln!(out, "removed {n}")?;
                }
                removed.push(n);
            }
            Err(e) => {
                if !json {
                    writeln!(err, "shm-ipc: {e}")?;
                }
                failed.push((shown, e));
            }
        }
    }
    if json {
        let refused: Vec<Json> = failed
            .iter()
            .map(|(n, e)| json!({"name": n, "error": e.to_string()}))
            .collect();
        json_out(out, &json!({"removed": removed, "refused": refused}))?;
    }
    Ok(if failed.is_empty() {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

fn gc(
    json: bool,
    dry_run: bool,
    prefix: Option<&str>,
    grace: Duration,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Failure> {
    checked_prefix(prefix)?;
    let entries = source::list(prefix)?;
    let mut removed: Vec<(String, String)> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut failures = 0;
    for e in &entries {
        let verdict = gc_verdict(e, grace);
        if !verdict.removes() {
            kept.push((e.name.clone(), verdict.reason().to_owned()));
            continue;
        }
        if !dry_run {
            let removal = shm_core::SegmentName::new(&e.name)
                .map_err(|x| CliError::BadName {
                    arg: e.name.clone(),
                    reason: x.to_string(),
                })
                .and_then(|n| source::remove(&n));
            match removal {
                // Somebody else removed it meanwhile: it is gone, as asked.
                Ok(()) | Err(CliError::NotFound { .. }) => {}
                Err(x) => {
                    writeln!(err, "shm-ipc: {x}")?;
                    failures += 1;
                    continue;
                }
            }
        }
        removed.push((e.name.clone(), verdict.reason().to_owned()));
    }
    if json {
        let list = |v: &[(String, String)]| -> Vec<Json> {
            v.iter()
                .map(|(n, r)| json!({"name": n, "reason": r}))
                .collect()
        };
        json_out(
            out,
            &json!({
                "dry_run": dry_run,
                if dry_run { "would_remove" } else { "removed" }: list(&removed),
                "kept": list(&kept),
            }),
        )?;
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        for (n, r) in &removed {
            writeln!(out, "{verb} {n}: {r}")?;
        }
        for (n, r) in &kept {
            writeln!(out, "kept {n}: {r}")?;
        }
        writeln!(
            out,
            "{verb} {}, kept {}{}",
            removed.len(),
            kept.len(),
            if failures > 0 {
                format!(", {failures} failed")
            } else {
                String::new()
            }
        )?;
    }
    Ok(if failures == 0 { EXIT_OK } else { EXIT_ERROR })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_str(args: &[&str]) -> (i32, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(args.iter().map(OsString::from), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn usage_errors_exit_2_with_a_hint() {
        let (code, out, err) = run_str(&["frob"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(out.is_empty());
        assert!(
            err.contains("unknown command") && err.contains("--help"),
            "{err}"
        );
        let (code, _, err) = run_str(&["rm"]);
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("shm-ipc help rm"), "{err}");
    }

    #[test]
    fn help_exits_0() {
        let (code, out, _) = run_str(&["--help"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("exit codes"));
        let (code, out, _) = run_str(&["help", "gc"]);
        assert_eq!(code, EXIT_OK);
        assert!(out.contains("--dry-run"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn bad_names_exit_1_with_the_reason() {
        for (arg, says) in [
            ("../etc/passwd", "character '/'"),
            ("a b", "character ' '"),
            (".hidden", "starts with '.'"),
            ("", "empty"),
            ("/dev/shm/x", "without /dev/shm/"),
            (
                "a-name-that-is-far-too-long-for-any-shm",
                "at most 30 allowed",
            ),
        ] {
            for cmd in [&["inspect", arg][..], &["rm", arg], &["rm", "--force", arg]] {
                let (code, out, err) = run_str(cmd);
                assert_eq!(code, EXIT_ERROR, "{cmd:?}");
                assert!(out.is_empty(), "{cmd:?}: {out}");
                assert!(err.contains(says), "{cmd:?}: {err}");
            }
        }
        let (code, _, err) = run_str(&["ls", "--prefix", "a/b"]);
        assert_eq!(code, EXIT_ERROR);
        assert!(err.contains("--prefix"), "{err}");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(t, "A    BB\nxyz  1\nq    22\n");
    }
}
