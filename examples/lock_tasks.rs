//! Seed 004's mutex example, across real processes: three tasks each print three lines about
//! a person, with pauses in between, holding one shared [`Lock`] so that the three lines of
//! a task are never interleaved with another task's.
//!
//! ```python
//! def task1(lock):
//!     lock.acquire()
//!     print("hello iam jerry")
//!     time.sleep(random.randint(0, 2))
//!     print("gender is boy")
//!     time.sleep(random.randint(0, 2))
//!     print("age is 15")
//!     lock.release()
//! # task2: owen, girl, 48; task3: jason, women, 26
//! ```
//!
//! The pauses are scaled down from 0–2 s to 0–200 ms. Run: `cargo run --example lock_tasks`.

use shm_core::SegmentName;
use shm_lock::{Lock, LockError};
use shm_process::{Process, Roles};
use std::error::Error;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A pause of 0, 100 or 200 ms, like `random.randint(0, 2)` scaled down.
fn random_pause(salt: u64) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mix = (nanos ^ u64::from(std::process::id()) ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    std::thread::sleep(Duration::from_millis((mix >> 61) % 3 * 100));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One task: the three lines of (name, gender, age) under the lock.
fn task(lock: &Lock, name: &str, gender: &str, age: u32) -> i32 {
    let guard = match lock.lock() {
        Ok(g) => g,
        // The previous holder died mid-task: its lines are cut short, ours will be whole, and
        // there is nothing else to repair. Take the lock and mark it consistent.
        Err(LockError::OwnerDied) => match lock.recover() {
            Ok(g) => {
                g.mark_consistent();
                g
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return 1;
            }
        },
        Err(e) => {
            eprintln!("{name}: {e}");
            return 1;
        }
    };
    say(&format!("hello iam {name}"));
    random_pause(1);
    say(&format!("gender is {gender}"));
    random_pause(2);
    say(&format!("age is {age}"));
    drop(guard);
    0
}

/// Opens the lock named by the first argument.
fn open(args: &[String]) -> Option<Lock> {
    let name = SegmentName::new(args.first()?).ok()?;
    Lock::builder(&name).open().ok()
}

fn task1(args: &[String]) -> i32 {
    open(args).map_or(1, |l| task(&l, "jerry", "boy", 15))
}

fn task2(args: &[String]) -> i32 {
    open(args).map_or(1, |l| task(&l, "owen", "girl", 48))
}

fn task3(args: &[String]) -> i32 {
    open(args).map_or(1, |l| task(&l, "jason", "women", 26))
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new()
        .role("task1", task1)
        .role("task2", task2)
        .role("task3", task3)
        .run();

    let name = SegmentName::unique();
    let lock = Lock::builder(&name).create()?;
    let children = ["task1", "task2", "task3"]
        .into_iter()
        .map(|role| Process::builder(role).arg(name.as_str()).start())
        .collect::<Result<Vec<Process>, _>>()?;
    for mut child in children {
        let status = child.join()?;
        assert!(status.success(), "a task failed: {status:?}");
    }
    drop(lock);
    Ok(())
}
