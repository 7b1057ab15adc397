//! Seed 004's `Manager().dict()` counter, rewritten with a `Value` under its lock, across real
//! processes: ten children each read the counter, pause, and write it back minus one, inside
//! the value's lock, so the parent sees 0.
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
//! No manager process and no separate lock: the counter is a `Value<i64>` in shared memory
//! and carries its own robust lock. The seed's read, sleep, write is the critical section
//! (`lock()` returns a guard); [`Value::update`] is the one-line form. The parent joins its
//! children instead of sleeping two seconds and hoping.
//!
//! Run: `cargo run --example manager_counter`.

use shm_core::SegmentName;
use shm_process::{Process, Roles};
use shm_value::Value;
use std::time::Duration;

/// The child: `task(data, l)`.
fn task(args: &[String]) -> i32 {
    let Some(name) = args.first().and_then(|a| SegmentName::new(a).ok()) else {
        eprintln!("usage: task VALUE_NAME");
        return 2;
    };
    let num = match Value::<i64>::open(&name) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("task: cannot open the counter: {e}");
            return 1;
        }
    };
    // A holder that died mid-update would be reported here (LockError::OwnerDied): this
    // example gives up rather than decrement a counter it cannot trust.
    let Ok(guard) = num.lock() else {
        eprintln!("task: a previous holder died holding the counter's lock");
        return 1;
    };
    let n = guard.get();
    std::thread::sleep(Duration::from_millis(20));
    guard.set(n - 1);
    0
}

fn main() {
    Roles::new().role("task", task).run();

    let name = SegmentName::unique();
    let num = Value::<i64>::create(&name, 10).expect("create the counter");
    let children: Vec<Process> = (0..10)
        .map(|_| {
            Process::builder("task")
                .arg(name.as_str())
                .start()
                .expect("start a child")
        })
        .collect();
    for mut child in children {
        let status = child.join().expect("join a child");
        assert!(status.success(), "a child failed: {status:?}");
    }
    println!("{{'num': {}}}", num.load());
    assert_eq!(num.load(), 0);

    // A read-modify-write in one line, without a guard to hold.
    num.update(|x| x + 10).expect("no holder died");
    println!("{{'num': {}}} after update(|x| x + 10)", num.load());
}
