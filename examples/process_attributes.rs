//! Seed 003's `Process` attributes (§1.1.4) and seed 000's `info`, across real processes, with
//! typed arguments, role functions that return `Result`, names, daemons and `current_process`.
//!
//! ```python
//! def hello(*, a=None):
//!     print(a)
//!
//! def is_sh(jc_type):
//!     print("daemon" if jc_type == 1 else "not daemon")
//!
//! def not_sh():
//!     pish = Process(target=is_sh, args=(1,), daemon=True)
//!     pfsh = Process(target=is_sh, args=('non-daem',))
//!     pish.start(); pfsh.start()
//!
//! def info(name):
//!     print(name, os.getppid(), os.getpid())
//!     print(sourceA)   # NameError under spawn: globals of __main__ are not inherited
//!
//! if __name__ == '__main__':
//!     p = Process(target=hello, name='hello', args=(), kwargs={'a': 'A'})
//!     p.start(); print(p.is_alive(), p.daemon); p.join()
//!     pnsh = Process(target=not_sh); pnsh.start(); pnsh.join()
//!     q = Process(target=info, args=('bob',)); q.start(); q.join(); print(q.exitcode)  # 1
//! ```
//!
//! Run: `cargo run --example process_attributes`. It checks its own output and exits non-zero
//! if anything differs.

use serde::{Deserialize, Serialize};
use shm_process::{current_process, Process, Role, Roles};
use std::error::Error;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

/// `hello`'s keyword arguments.
#[derive(Serialize, Deserialize)]
struct HelloArgs {
    a: Option<String>,
}

/// What `is_sh` is told to be.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Debug)]
enum Kind {
    Daemon,
    NonDaemon,
}

const HELLO: Role<HelloArgs> = Role::new("hello");
const IS_SH: Role<Kind> = Role::new("is_sh");
const NOT_SH: Role<()> = Role::new("not_sh");
const INFO: Role<String> = Role::new("info");

fn hello(args: HelloArgs) -> Result<(), Box<dyn Error>> {
    let me = current_process();
    println!("{}: a={}", me.name(), args.a.as_deref().unwrap_or("None"));
    Ok(())
}

fn is_sh(kind: Kind) -> Result<(), Box<dyn Error>> {
    match kind {
        Kind::Daemon => {
            println!("daemon {}", current_process().pid());
            // Runs until its parent ends: a daemon dies with it.
            std::thread::sleep(Duration::from_secs(60));
        }
        Kind::NonDaemon => {
            for _ in 0..3 {
                println!("non-daemon");
            }
        }
    }
    Ok(())
}

fn not_sh(_: ()) -> Result<(), Box<dyn Error>> {
    let daemon = IS_SH.builder(&Kind::Daemon)?.daemon(true).start()?;
    let mut non_daemon = IS_SH.builder(&Kind::NonDaemon)?.start()?;
    assert!(daemon.is_daemon() && !non_daemon.is_daemon());
    // Python joins a non-daemon child at exit; here it is joined explicitly (dropping it
    // running would warn, and the role runner would join it).
    let status = non_daemon.join()?;
    println!("{} ended: {status}", non_daemon.name());
    // Returning drops `daemon`, which kills it: it dies with its parent.
    Ok(())
}

fn info(name: String) -> Result<(), Box<dyn Error>> {
    let me = current_process();
    println!("{name} {} {}", me.parent_pid(), me.pid());
    // `sourceA` lived in the parent's `main`: a spawned child does not have it.
    Err("sourceA is not defined in a spawned child".into())
}

/// Starts `builder` with stdout piped and returns the child and its stdout, read to its end
/// after the child ended.
fn run(builder: shm_process::ProcessBuilder) -> Result<(Process, String), Box<dyn Error>> {
    let mut p = builder.stdout(Stdio::piped()).start()?;
    let mut out = String::new();
    p.take_stdout()
        .ok_or("no stdout")?
        .read_to_string(&mut out)?;
    p.join()?;
    Ok((p, out))
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new()
        .register(HELLO, hello)
        .register(IS_SH, is_sh)
        .register(NOT_SH, not_sh)
        .register(INFO, info)
        .run();

    println!("main process: {:?}", current_process());

    // p = Process(target=hello, name='hello', kwargs={'a': 'A'})
    let p = HELLO
        .builder(&HelloArgs {
            a: Some("A".into()),
        })?
        .name("hello");
    let (p, out) = run(p)?;
    println!(
        "{}: alive={} daemon={} exitcode={:?}",
        p.name(),
        p.is_alive(),
        p.is_daemon(),
        p.exitcode()
    );
    assert_eq!(out, "hello: a=A\n");
    assert_eq!(p.exitcode(), Some(0));

    // pnsh = Process(target=not_sh): a daemon and a non-daemon grandchild.
    let mut pnsh = NOT_SH.builder(&())?.stdout(Stdio::piped()).start()?;
    let mut lines = BufReader::new(pnsh.take_stdout().ok_or("no stdout")?).lines();
    let mut out = Vec::new();
    let mut daemon_pid = None;
    for line in &mut lines {
        let line = line?;
        if let Some(pid) = line.strip_prefix("daemon ") {
            daemon_pid = Some(pid.parse::<u32>()?);
        }
        out.push(line);
    }
    let status = pnsh.join()?;
    print!(
        "{}",
        out.iter().map(|l| format!("  {l}\n")).collect::<String>()
    );
    assert!(status.success(), "not_sh: {status} {:?}", pnsh.error());
    let non_daemon_lines = out.iter().filter(|l| *l == "non-daemon").count();
    assert_eq!(non_daemon_lines, 3, "{out:?}");
    assert!(out
        .iter()
        .any(|l| l.starts_with("is_sh-") && l.ends_with("ended: exit code 0")));
    let daemon_pid = daemon_pid.ok_or("the daemon grandchild never spoke")?;
    // The daemon died with its parent: its pid is gone (or, rarely, reused by a stranger).
    let gone = shm_core::ProcessId::of(daemon_pid).is_none();
    println!("daemon grandchild {daemon_pid} gone: {gone}");

    // q = Process(target=info, args=('bob',)): fails as Python's NameError would.
    let (q, out) = run(INFO.builder(&"bob".to_owned())?.stderr(Stdio::null()))?;
    println!(
        "{}: exitcode={:?} error={:?}",
        q.name(),
        q.exitcode(),
        q.error()
    );
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[0], "bob");
    assert_eq!(fields[1], std::process::id().to_string());
    assert_eq!(fields[2], q.pid().to_string());
    assert_eq!(q.exitcode(), Some(1));
    assert_eq!(q.error(), Some("sourceA is not defined in a spawned child"));
    println!("all checks passed");
    Ok(())
}
