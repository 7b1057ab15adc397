//! The `shm-ipc` command-line tool: list, inspect, remove and clean up segments.
//!
//! [`run`] takes the arguments and two writers and returns the exit code, so the whole tool is
//! testable in-process; `main` only wires it to the real ones.

mod args;
mod model;
mod source;
mod state;

use args::{Command, Invocation};
use model::Entry;
use serde_json::{json, Value as Json};
use shm_core::{SegmentState, Users};
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
        Command::Ls { prefix, all } => ls(inv.json, prefix.as_deref(), *all, out),
        Command::Inspect { name } => inspect(inv.json, name, out),
        Command::Rm { names, force } => rm(inv.json, names, *force, out, err),
        Command::Gc { dry_run, prefix } => gc(inv.json, *dry_run, prefix.as_deref(), out, err),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

fn type_column(e: &Entry) -> String {
    if !e.kind.is_some_and(model::has_elements) || e.format.is_empty() {
        return "-".into();
    }
    match e.format.as_str() {
        f if f.len() == 1 => format!("'{f}'"),
        f => f.into(),
    }
}

fn liveness_word(l: Option<shm_core::Liveness>) -> String {
    l.map_or("unknown".into(), |l| l.to_string())
}

fn creator_column(e: &Entry) -> String {
    match e.creator {
        Some(c) => format!("{} {}", c.pid, liveness_word(c.liveness)),
        None => "-".into(),
    }
}

fn state_column(e: &Entry) -> String {
    match &e.state {
        shm_core::SegmentState::Corrupt { reason } => format!("corrupt: {reason}"),
        s => model::state_word(s).into(),
    }
}

fn entry_json(e: &Entry) -> Json {
    json!({
        "name": e.name,
        "state": model::state_word(&e.state),
        "detail": model::state_detail(&e.state),
        "kind": e.kind.map(|k| k.to_string()),
        "format": (!e.format.is_empty() && e.kind.is_some_and(model::has_elements))
            .then_some(&e.format),
        "count": e.count,
        "size": e.size,
        "creator": e.creator.map(|c| json!({
            "pid": c.pid,
            "liveness": liveness_word(c.liveness),
        })),
        "users": users_json(&e.users),
        "users_complete": matches!(e.users, Users::Known(_)),
        "locked": e.locked,
        "age_secs": e.age.map(|a| a.as_secs_f64()),
        "abandoned": e.abandoned,
    })
}

fn users_json(u: &Users) -> Json {
    json!(u.seen())
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
            Json::Array(a) if a.iter().all(|x| !x.is_object()) => {
                if a.is_empty() {
                    "-".into()
                } else {
                    a.iter()
                        .map(|x| match x {
                            Json::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            }
            other => other.to_string(),
        };
        let key = format!("{}:", k.as_ref());
        writeln!(out, "{key:width$}  {v}", width = width + 1)?;
    }
    Ok(())
}

fn fields_json(fields: state::Fields) -> serde_json::Map<String, Json> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

// ---------------------------------------------------------------------------------------------
// Commands

fn checked_prefix(prefix: Option<&str>) -> Result<(), CliError> {
    match prefix {
        Some(p) => source::check_prefix(p),
        None => Ok(()),
    }
}

fn ls(json: bool, prefix: Option<&str>, all: bool, out: &mut dyn Write) -> Result<i32, Failure> {
    checked_prefix(prefix)?;
    let listed = source::list(prefix, all)?;
    if json {
        let list: Vec<Json> = listed.iter().map(|l| entry_json(&l.entry)).collect();
        json_out(out, &json!({ "segments": list }))?;
        return Ok(EXIT_OK);
    }
    if listed.is_empty() {
        writeln!(out, "no segments")?;
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|l| {
            let e = &l.entry;
            vec![
                e.name.clone(),
                e.kind.map_or("-".into(), |k| k.to_string()),
                type_column(e),
                e.count.map_or("-".into(), |c| c.to_string()),
                model::fmt_size(e.size),
                creator_column(e),
                model::users_column(&e.users, e.locked),
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
    let l = source::find(&name)?;
    let e = &l.entry;
    let not_ours = |reason: String| CliError::Corrupt {
        name: e.name.clone(),
        reason,
    };
    let (mut fields, live) = match &e.state {
        SegmentState::Ready => {
            let kind = e
                .kind
                .ok_or_else(|| not_ours("the header names no known object kind".into()))?;
            let seg = shm_core::Segment::builder(&name, kind)
                .open_timeout(Duration::from_millis(300))
                .open()
                .map_err(|x| state::open_failed(&name, x))?;
            let mut f = state::header_fields(e, &seg);
            f.push(("users", users_json(&e.users)));
            f.push(("users_complete", json!(matches!(e.users, Users::Known(_)))));
            f.push(("age_secs", json!(e.age.map(|a| a.as_secs_f64()))));
            let live = state::live_fields(&name, &seg)?;
            (f, Some(live))
        }
        SegmentState::Corrupt { reason } => return Err(not_ours(reason.clone()).into()),
        SegmentState::Foreign => {
            return Err(CliError::NotOurs {
                name: e.name.clone(),
            }
            .into())
        }
        SegmentState::NotRegularFile { found } => {
            return Err(not_ours(format!("it is a {found}, not a regular file")).into())
        }
        SegmentState::Unreadable => {
            return Err(CliError::Os {
                what: e.name.clone(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            }
            .into())
        }
        // Never published: show what the file says.
        _ => {
            let mut f: state::Fields = vec![
                ("name", json!(e.name)),
                ("state", json!(model::state_word(&e.state))),
                ("detail", json!(model::state_detail(&e.state))),
                ("file_size", json!(e.size)),
            ];
            if let Some(c) = e.creator {
                f.push(("creator_pid", json!(c.pid)));
                f.push(("creator", json!(liveness_word(c.liveness))));
            }
            f.push(("users", users_json(&e.users)));
            f.push(("users_complete", json!(matches!(e.users, Users::Known(_)))));
            f.push(("age_secs", json!(e.age.map(|a| a.as_secs_f64()))));
            (f, None)
        }
    };
    fields.push(("abandoned", json!(e.abandoned)));
    if json {
        let mut obj = fields_json(fields);
        if let Some(live) = live {
            obj.insert("live".into(), Json::Object(fields_json(live)));
        }
        json_out(out, &Json::Object(obj))?;
        return Ok(EXIT_OK);
    }
    print_fields(out, &humanize(fields, e))?;
    if let Some(live) = live.filter(|l| !l.is_empty()) {
        writeln!(out, "live state:")?;
        let indented: Vec<(String, Json)> = humanize(live, e)
            .into_iter()
            .map(|(k, v)| (format!("  {k}"), v))
            .collect();
        print_fields(out, &indented)?;
    }
    Ok(EXIT_OK)
}

/// The JSON fields, merged into what a person reads at a glance: `users` with `?` for ones
/// that cannot be seen, `age` as `5s`, a lock holder as `thread N (alive)`.
fn humanize(fields: state::Fields, e: &Entry) -> Vec<(&'static str, Json)> {
    let thread = |prefix: &str| {
        fields
            .iter()
            .find(|(k, _)| k.strip_prefix(prefix) == Some("holder_thread"))
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for (k, v) in fields.iter().cloned() {
        match k {
            "users_complete" | "holder_thread" | "lock_holder_thread" => {}
            "users" => out.push((k, json!(model::users_column(&e.users, e.locked)))),
            "age_secs" => out.push(("age", json!(e.age.map_or("-".into(), model::fmt_age)))),
            "producers" | "consumers" => {
                let list: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|h| {
                                format!("{} ({})", h["pid"], h["liveness"].as_str().unwrap_or("?"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((
                    k,
                    json!(if list.is_empty() {
                        "-".into()
                    } else {
                        list.join(", ")
                    }),
                ));
            }
            "holder" | "lock_holder" => {
                let prefix = if k == "holder" { "" } else { "lock_" };
                match (thread(prefix), v.as_str()) {
                    (Some(t), Some(l)) => out.push((k, json!(format!("thread {t} ({l})")))),
                    _ => out.push((k, v)),
                }
            }
            _ => out.push((k, v)),
        }
    }
    out
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
        let result = source::parse_name(arg)
            .and_then(|name| source::find(&name))
            .and_then(|l| {
                if !force && !l.entry.is_ours() {
                    return Err(CliError::Refused {
                        name: l.entry.name.clone(),
                        reason: format!(
                            "{}: not an shm-ipc segment (--force removes it anyway)",
                            model::state_word(&l.entry.state)
                        ),
                    });
                }
                source::remove(&l, force).map(|()| l.entry.name)
            });
        match result {
            Ok(n) => {
                if !json {
                    writeln!(out, "removed {n}")?;
                }
                removed.push(n);
            }
            Err(e) => {
                writeln!(err, "shm-ipc: {e}")?;
                failed.push((shown, e));
            }
        }
    }
    if json {
        let refused: Vec<Json> = failed
            .iter()
            .map(|(n, e)| json!({"name": n, "error": e.to_string()}))
            .collect();
        json_out(out, &json!({"removed": removed, "failed": refused}))?;
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
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Failure> {
    checked_prefix(prefix)?;
    let listed = source::list(prefix, false)?;
    let mut removed: Vec<(String, String)> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut failures = 0;
    for l in &listed {
        let reason = match model::gc_reason(&l.entry) {
            Ok(why) => why,
            Err(why) => {
                kept.push((l.entry.name.clone(), why));
                continue;
            }
        };
        if !dry_run {
            // shm-core checks again, under the file's lock, that nobody uses it and that the
            // name still refers to the file that was judged.
            match source::remove(l, false) {
                Ok(()) => {}
                // Somebody else removed it meanwhile: it is gone, as asked.
                Err(CliError::NotFound { .. }) => {}
                // Somebody started using it, or re-created it, since the listing.
                Err(CliError::Refused { reason, .. }) => {
                    kept.push((l.entry.name.clone(), reason));
                    continue;
                }
                Err(x) => {
                    writeln!(err, "shm-ipc: {x}")?;
                    failures += 1;
                    continue;
                }
            }
        }
        removed.push((l.entry.name.clone(), reason));
    }
    if json {
        let list = |v: &[(String, String)]| -> Vec<Json> {
            v.iter()
                .map(|(n, r)| json!({"name": n, "reason": r}))
                .collect()
        };
        let key = if dry_run { "would_remove" } else { "removed" };
        json_out(
            out,
            &json!({
                "dry_run": dry_run,
                key: list(&removed),
                "kept": list(&kept),
                "failed": failures,
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
        write!(out, "{verb} {}, kept {}", removed.len(), kept.len())?;
        if failures > 0 {
            write!(out, ", {failures} failed")?;
        }
        writeln!(out)?;
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
    fn humanize_merges_what_belongs_together() {
        let e = Entry {
            name: "n".into(),
            state: SegmentState::Ready,
            kind: Some(shm_core::ObjectKind::Lock),
            format: String::new(),
            count: Some(0),
            size: 288,
            creator: None,
            users: Users::Unknown { seen: vec![12] },
            locked: false,
            age: Some(Duration::from_secs(300)),
            abandoned: false,
        };
        let fields: state::Fields = vec![
            ("users", json!([12])),
            ("users_complete", json!(false)),
            ("age_secs", json!(300.0)),
            ("holder_thread", json!(77)),
            ("holder", json!("dead")),
            ("producers", json!([{"pid": 5, "liveness": "alive"}])),
            ("consumers", json!([])),
        ];
        let h = humanize(fields, &e);
        assert_eq!(
            h,
            vec![
                ("users", json!("12,?")),
                ("age", json!("5m")),
                ("holder", json!("thread 77 (dead)")),
                ("producers", json!("5 (alive)")),
                ("consumers", json!("-")),
            ]
        );
        let mut out = Vec::new();
        print_fields(&mut out, &h).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("users:      12,?\n"), "{text}");
        assert!(text.contains("holder:     thread 77 (dead)\n"), "{text}");
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
