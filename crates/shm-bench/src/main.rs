//! # shm-bench: the comparison runner
//!
//! Measures every shm-ipc primitive beside its peers across real processes, in one run, and
//! prints one table per row of the comparison: medians, p99 for latencies, and each line's
//! ratio to ours. Writes `BENCHMARKS.md` (and optionally JSON) from the run itself.
//!
//! ```text
//! cargo run --release -p shm-bench                      # full run, writes BENCHMARKS.md
//! cargo run --release -p shm-bench -- --only queue,lock # a subset
//! cargo run --release -p shm-bench -- --quick           # every cell briefly (CI)
//! cargo run --release -p shm-bench -- --json out.json   # also JSON ("-" for stdout)
//! cargo run --release -p shm-bench -- --list            # the tables and their keys
//! ```
//!
//! The other side of a two-process row is this binary started again in a role (see
//! `shm_process::Roles`), pinned to its CPU.

mod error;
mod harness;
mod report;
mod rows;

use harness::Cfg;
use report::{Cell, Conditions, Line, Report};
use rows::Miss;
use shm_process::Roles;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

const USAGE: &str = "\
shm-bench: every shm-ipc primitive against its peers, across real processes, in one table

usage: shm-bench [options]
  --quick            every cell briefly: checks that everything runs; numbers not for quoting
  --only LIST        comma-separated areas (queue, bytes, lock, value, array, manager, pool) or table keys
  --json PATH        also write the results as JSON (\"-\" for stdout)
  --markdown PATH    write the Markdown report here (default: BENCHMARKS.md at the workspace
                     root for a full run of every table; no report for --quick or --only)
  --no-markdown      do not write the Markdown report
  --no-python        skip the Python multiprocessing rows
  --samples N        most samples per latency cell (default 200000; quick 2000)
  --seconds S        most seconds measured per cell (default 3; quick 0.15)
  --rounds N         measure every cell in N interleaved rounds, pooled (default 3; quick 1)
  --fine N           measure the lines of a budget ratio N times per round, each time beside
                     the rest of their table; ratios are taken pair by pair (default 8; quick 1)
  --list             list the tables and their keys, then exit
  -q, --quiet        no per-cell progress
  -h, --help         this text";

struct Args {
    cfg: Cfg,
    only: Vec<String>,
    json: Option<String>,
    markdown: Option<Option<PathBuf>>,
    list: bool,
}

fn parse_args() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let mut a = Args {
        cfg: if quick { Cfg::quick() } else { Cfg::full() },
        only: Vec::new(),
        json: None,
        markdown: None,
        list: false,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => {}
            "--only" => a.only.extend(
                value("--only")?
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            ),
            "--json" => a.json = Some(value("--json")?),
            "--markdown" => a.markdown = Some(Some(PathBuf::from(value("--markdown")?))),
            "--no-markdown" => a.markdown = Some(None),
            "--no-python" => a.cfg.python = false,
            "--samples" => {
                a.cfg.samples = value("--samples")?
                    .parse()
                    .map_err(|e| format!("--samples: {e}"))?;
                if a.cfg.samples < 5 {
                    return Err("--samples must be at least 5".into());
                }
            }
            "--seconds" => {
                let s: f64 = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?;
                if !(s > 0.0 && s < 3600.0) {
                    return Err("--seconds must be between 0 and 3600".into());
                }
                a.cfg.max_time = Duration::from_secs_f64(s);
            }
            "--rounds" => {
                a.cfg.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?;
                if !(1..=100).contains(&a.cfg.rounds) {
                    return Err("--rounds must be between 1 and 100".into());
                }
            }
            "--fine" => {
                a.cfg.fine = value("--fine")?
                    .parse()
                    .map_err(|e| format!("--fine: {e}"))?;
                if !(1..=100).contains(&a.cfg.fine) {
                    return Err("--fine must be between 1 and 100".into());
                }
            }
            "--list" => a.list = true,
            "-q" | "--quiet" => a.cfg.verbose = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() {
    rows::roles(Roles::new()).run();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shm-bench: {e}");
            std::process::exit(2);
        }
    };
    let all_groups = rows::groups();
    if args.list {
        for g in &all_groups {
            println!("{:<18} {:<6} {}", g.key, g.area, g.title);
        }
        return;
    }
    for o in &args.only {
        if !all_groups.iter().any(|g| g.key == o || g.area == o) {
            eprintln!("shm-bench: --only {o}: no such area or table (see --list)");
            std::process::exit(2);
        }
    }
    let wanted = |key: &str| {
        args.only.is_empty()
            || all_groups
                .iter()
                .any(|g| g.key == key && args.only.iter().any(|o| o == g.key || o == g.area))
    };
    let groups: Vec<_> = all_groups
        .iter()
        .filter(|g| wanted(g.key))
        .cloned()
        .collect();
    let cases: Vec<_> = rows::cases()
        .into_iter()
        .filter(|c| wanted(c.group))
        .collect();

    let cfg = args.cfg.clone();
    let started = SystemTime::now();
    let t0 = Instant::now();
    let pinned = harness::online_cpus() >= 2 && harness::pin_to(1) && harness::pin_to(0);
    harness::unpin();
    let overhead = harness::timer_overhead();
    // Every cell is measured in `rounds` interleaved rounds (every table once, then every
    // table again…), each with its share of the samples and time, and the samples pooled: a
    // slow spell of this shared machine then hits every line alike instead of one line's whole
    // measurement. A table with lines of a budget ratio (`Case::fine`) is gone through
    // `fine` times per round, column by column, those lines measured each time and the others
    // only the first time: a budget line and its peer are measured right after one another
    // `rounds × fine` times, and the report takes their ratio pair by pair.
    let rounds = cfg.rounds.max(1);
    let fine = cfg.fine.max(1);
    let round_cfg = cfg.piece(rounds);
    let fine_cfg = cfg.piece(rounds * fine);
    let placements_of = |c: &rows::Case| {
        groups
            .iter()
            .find(|g| g.key == c.group)
            .map_or(0, |g| g.placements.len())
    };
    let total: usize = cases
        .iter()
        .map(|c| placements_of(c) * rounds * if c.fine { fine } else { 1 })
        .sum();
    if cfg.verbose {
        eprintln!(
            "shm-bench: {} cells in {} tables ({} mode, {} measurements){}",
            cases.iter().map(placements_of).sum::<usize>(),
            groups.len(),
            if cfg.quick { "quick" } else { "full" },
            total,
            if pinned {
                ""
            } else {
                "; pinning to CPUs 0 and 1 failed: placements are nominal"
            }
        );
    }
    // Per case, per column: the samples of each piece (round or sub-round), or why none.
    let mut pooled: Vec<Vec<Result<Vec<Vec<f64>>, Miss>>> = cases
        .iter()
        .map(|c| (0..placements_of(c)).map(|_| Ok(Vec::new())).collect())
        .collect();
    let mut done = 0;
    for round in 1..=rounds {
        for g in &groups {
            let subs = if cases.iter().any(|c| c.group == g.key && c.fine) {
                fine
            } else {
                1
            };
            for sub in 0..subs {
                for (pi, &p) in g.placements.iter().enumerate() {
                    for (ci, c) in cases.iter().enumerate() {
                        if c.group != g.key || (sub > 0 && !c.fine) {
                            continue;
                        }
                        done += 1;
                        let slot = &mut pooled[ci][pi];
                        let Ok(acc) = slot else {
                            continue; // skipped or failed in an earlier piece
                        };
                        if cfg.verbose {
                            let piece = if c.fine && fine > 1 {
                                format!("{round}/{rounds}.{}", sub + 1)
                            } else {
                                format!("{round}/{rounds}")
                            };
                            eprint!(
                                "[{done:>4}/{total}] round {piece:<6} {:<15} {:<56} {:<15} … ",
                                g.key,
                                c.line,
                                p.title()
                            );
                            let _ = std::io::stderr().flush();
                        }
                        let t = Instant::now();
                        let outcome = (c.run)(if c.fine { &fine_cfg } else { &round_cfg }, p);
                        harness::unpin();
                        match outcome {
                            Ok(s) => {
                                if cfg.verbose {
                                    let latency = matches!(g.kind, rows::Kind::Latency);
                                    let med =
                                        harness::Stats::of(&s, latency).map_or(0.0, |st| st.median);
                                    eprintln!(
                                        "{} (n={}, {:.2} s)",
                                        harness::fmt_ns(med),
                                        s.len(),
                                        t.elapsed().as_secs_f64()
                                    );
                                }
                                acc.push(s);
                            }
                            Err(m) => {
                                if cfg.verbose {
                                    match &m {
                                        Miss::Skipped(w) => eprintln!("skipped: {w}"),
                                        Miss::Failed(w) => eprintln!("FAILED: {w}"),
                                    }
                                }
                                *slot = Err(m);
                            }
                        }
                    }
                }
            }
        }
    }
    let mut lines = Vec::new();
    for (c, cells) in cases.iter().zip(pooled) {
        let Some(g) = groups.iter().find(|g| g.key == c.group) else {
            continue;
        };
        let latency = matches!(g.kind, rows::Kind::Latency);
        let cells = g
            .placements
            .iter()
            .zip(cells)
            .map(|(&p, r)| Cell {
                placement: p,
                outcome: r.and_then(|s| {
                    harness::Stats::of_pieces(&s, latency).ok_or(Miss::Failed("no samples".into()))
                }),
            })
            .collect();
        lines.push(Line {
            group: c.group,
            line: c.line.clone(),
            who: c.who,
            wait: c.wait,
            cells,
        });
    }

    let cond = Conditions {
        date: report::utc(
            started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        cpu: cpu_model(),
        cpus: harness::online_cpus(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_owned()),
        rustc: rustc_version(),
        python: if cfg.python {
            rows::python::version()
        } else {
            None
        },
        command: std::iter::once("shm-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
        timer_overhead_ns: overhead,
        seconds: t0.elapsed().as_secs_f64(),
        pinned,
    };
    let full_run = args.only.is_empty() && !cfg.quick;
    let report = Report {
        cfg,
        cond,
        groups,
        lines,
    };
    print!("{}", report.text());

    let md_path = match &args.markdown {
        Some(p) => p.clone(),
        None if full_run => Some(workspace_root().join("BENCHMARKS.md")),
        None => None,
    };
    let mut status = 0;
    if let Some(path) = md_path {
        match std::fs::write(&path, report.markdown()) {
            Ok(()) => eprintln!("shm-bench: wrote {}", path.display()),
            Err(e) => {
                eprintln!("shm-bench: writing {}: {e}", path.display());
                status = 1;
            }
        }
    }
    if let Some(j) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        if j == "-" {
            println!("{text}");
        } else if let Err(e) = std::fs::write(j, text) {
            eprintln!("shm-bench: writing {j}: {e}");
            status = 1;
        }
    }
    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!("shm-bench: {} cell(s) failed:", failures.len());
        for f in &failures {
            eprintln!("  {f}");
        }
        status = 1;
    }
    std::process::exit(status);
}

/// The workspace root (two levels above this crate).
fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .map_or(here.clone(), PathBuf::from)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}
