//! Python `multiprocessing` peers: `python/mp_peers.py` run as a subprocess, one case per
//! cell, its samples read back as JSON.

use super::{case, Case, Miss, Who};
use crate::error::BoxError;
use crate::harness::{Cfg, Placement};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The script, in this crate's source tree.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/mp_peers.py");

/// The interpreter: `$SHM_BENCH_PYTHON` or `python3`.
fn interpreter() -> String {
    std::env::var("SHM_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The interpreter's version (`3.11.2`), or `None` if there is none.
pub fn version() -> Option<String> {
    static V: OnceLock<Option<String>> = OnceLock::new();
    V.get_or_init(|| {
        let out = Command::new(interpreter())
            .args(["-c", "import platform; print(platform.python_version())"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    })
    .clone()
}

/// Runs one case of the script and returns its samples (ns per operation).
pub fn run(cfg: &Cfg, py_case: &str, placement: Placement, batch: u64) -> Result<Vec<f64>, Miss> {
    if !cfg.python {
        return Err(Miss::Skipped("Python rows off (--no-python)".into()));
    }
    if version().is_none() {
        return Err(Miss::Skipped(format!("no {} here", interpreter())));
    }
    // Python is ~1000x slower per op: fewer samples, same time budget.
    let samples = (cfg.samples / 20).max(20);
    let secs = cfg.max_time.as_secs_f64().max(0.1);
    let out = Command::new(interpreter())
        .arg(SCRIPT)
        .args(["--case", py_case])
        .args(["--samples", &samples.to_string()])
        .args(["--max-seconds", &format!("{secs:.3}")])
        .args(["--pin", placement.key()])
        .args(["--batch", &batch.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {SCRIPT}: {e}"))?;
    if !out.status.success() {
        return Err(Miss::Failed(format!(
            "{py_case}: python exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| Miss::Failed(format!("{py_case}: {e}")))
}

/// Parses the script's one line of JSON into samples.
pub fn parse(stdout: &str) -> Result<Vec<f64>, BoxError> {
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("bad JSON from python: {e}"))?;
    let samples = v
        .get("samples_ns")
        .and_then(|s| s.as_array())
        .ok_or("python output has no samples_ns")?;
    let out: Vec<f64> = samples.iter().filter_map(|x| x.as_f64()).collect();
    if out.len() != samples.len() || out.is_empty() {
        return Err("python samples_ns is empty or not all numbers".into());
    }
    Ok(out)
}

/// A Python case as a table line.
pub fn line(
    group: &'static str,
    name: &'static str,
    wait: &'static str,
    py_case: &'static str,
    batch: u64,
) -> Case {
    case(group, name, Who::Peer, wait, move |cfg, p| {
        run(cfg, py_case, p, batch)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_and_rejects_garbage() {
        let s = parse(r#"{"case":"x","kind":"latency","samples_ns":[1.5,2,3],"batch":1}"#);
        assert_eq!(s.unwrap(), vec![1.5, 2.0, 3.0]);
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"samples_ns":[]}"#).is_err());
        assert!(parse(r#"{"samples_ns":[1,"a"]}"#).is_err());
        assert!(parse(r#"{"case":"x"}"#).is_err());
    }
}
