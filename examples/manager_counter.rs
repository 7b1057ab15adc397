//! Seed 004's locked counter across real processes: ten children each read a number from a
//! manager's dict, pause, and write it back minus one, inside a lock, so the parent sees 0.
//!
//! ```python
//! def task(data, l):
//!     l.acquire()
//!     num = data["num"]
//!     time.sleep(0.1)
//!     data["num"] = num - 1
//!     l.release()
//!
//! if __name__ == '__main__':
//!     m = Manager()
//!     data = m.dict({"num": 10})
//!     l = Lock()
//!     for i in range(10):
//!         p = Process(target=task, args=(data, l))
//!         p.start()
//!     time.sleep(2)
//!     print(data)
//! ```
//!
//! The dict and the lock both come from the manager, so each child gets one argument: the
//! manager, as a typed role argument (`Shared<Manager>`, opened by the child). The seed's
//! read, sleep, write is the critical section under the lock; [`SharedDict::update`] is the
//! same read-modify-write in one call, under the dict's own lock (no separate lock needed).
//! The parent joins its children instead of sleeping two seconds and hoping.
//!
//! Run: `cargo run --example manager_counter`.

use shm_core::SegmentName;
use shm_lock::LockError;
use shm_manager::{Manager, SharedDict};
use shm_process::{Process, Role, Roles, Shared};
use std::error::Error;
use std::time::Duration;

/// The child's role: its argument is the manager.
const TASK: Role<Shared<Manager>> = Role::new("task");

/// The child: `task(data, l)`.
fn task(m: Shared<Manager>) -> Result<(), Box<dyn Error>> {
    let m = m.open()?;
    let data = m.dict::<String, i64>("data")?;
    let l = m.lock("l")?;
    let guard = match l.lock() {
        Ok(g) => g,
        // A holder died inside its read-sleep-write. The dict never tears: "num" holds either
        // the value before that holder's write or after it. Nothing else to repair here, so
        // take the lock through `recover`, mark it consistent, and carry on (a decrement may
        // be lost with the dead holder, as it would in Python).
        Err(LockError::OwnerDied) => {
            let g = l.recover()?;
            g.mark_consistent();
            g
        }
        Err(e) => return Err(e.into()),
    };
    let num = data.get("num")?.ok_or("no num")?;
    std::thread::sleep(Duration::from_millis(20));
    data.insert("num", &(num - 1))?;
    drop(guard);
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(TASK, task).run();

    let m = Manager::create(&SegmentName::unique())?;
    let data: SharedDict<String, i64> = m.dict("data")?;
    data.insert("num", &10)?;
    m.lock("l")?;
    let children: Vec<Process> = (0..10)
        .map(|_| Ok(TASK.builder(&m.shared())?.start()?))
        .collect::<Result<_, Box<dyn Error>>>()?;
    for mut child in children {
        let status = child.join()?;
        assert!(status.success(), "a child failed: {status:?}");
    }
    let num = data.get("num")?;
    println!("{{'num': {}}}", num.unwrap_or_default());
    assert_eq!(num, Some(0));

    // The same read-modify-write in one call, under the dict's own lock.
    data.update("num", |n| n.map(|n| n + 10))?;
    println!(
        "{{'num': {}}} after update(+10)",
        data.get("num")?.unwrap_or_default()
    );
    assert_eq!(data.get("num")?, Some(10));
    Ok(())
}
