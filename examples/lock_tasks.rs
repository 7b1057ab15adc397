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
use shm_process::{Role, Roles, Shared};
use std::error::Error;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `task1(lock)`: jerry's three lines.
const TASK1: Role<Shared<Lock>> = Role::new("task1");
/// `task2(lock)`: owen's three lines.
const TASK2: Role<Shared<Lock>> = Role::new("task2");
/// `task3(lock)`: jason's three lines.
const TASK3: Role<Shared<Lock>> = Role::new("task3");

/// A pause of 0, 100 or 200 ms, like `random.randint(0, 2)` scaled down.
fn random_pause(salt: u64) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mix = (nanos ^ u64::from(std::process::id()) ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    std::thread::sleep(Duration::from_millis((mix >> 61) % 3 * 100));
}

fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// One task: opens the lock and prints the three lines of (name, gender, age) under it.
fn task(lock: &Shared<Lock>, name: &str, gender: &str, age: u32) -> Result<(), Box<dyn Error>> {
    let lock = lock.open()?;
    let guard = match lock.lock() {
        Ok(g) => g,
        // The previous holder died mid-task: its lines are cut short, ours will be whole, and
        // there is nothing else to repair. Take the lock and mark it consistent.
        Err(LockError::OwnerDied) => {
            let g = lock.recover()?;
            g.mark_consistent();
            g
        }
        Err(e) => return Err(e.into()),
    };
    say(&format!("hello iam {name}"))?;
    random_pause(1);
    say(&format!("gender is {gender}"))?;
    random_pause(2);
    say(&format!("age is {age}"))?;
    drop(guard);
    Ok(())
}

fn task1(lock: Shared<Lock>) -> Result<(), Box<dyn Error>> {
    task(&lock, "jerry", "boy", 15)
}

fn task2(lock: Shared<Lock>) -> Result<(), Box<dyn Error>> {
    task(&lock, "owen", "girl", 48)
}

fn task3(lock: Shared<Lock>) -> Result<(), Box<dyn Error>> {
    task(&lock, "jason", "women", 26)
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new()
        .register(TASK1, task1)
        .register(TASK2, task2)
        .register(TASK3, task3)
        .run();

    let name = SegmentName::unique();
    let lock = Lock::builder(&name).create()?;
    let mut children = Vec::new();
    for role in [TASK1, TASK2, TASK3] {
        children.push(role.builder(&Shared::new(&name))?.start()?);
    }
    for mut child in children {
        let status = child.join()?;
        assert!(status.success(), "a task failed: {status:?}");
    }
    drop(lock);
    Ok(())
}
