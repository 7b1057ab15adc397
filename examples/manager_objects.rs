//! Seed 003's `Manager` program across real processes: one manager hands a child a dict, a
//! list, a queue, an array, a value and a lock, by key; the parent holds the lock the whole
//! time, so the child's timed acquire gives up.
//!
//! ```python
//! def f(d, l, q, a, v, lo):
//!     d[1] = '1'
//!     d['2'] = 2
//!     d[0.25] = None
//!     q.put(100)
//!     lo.acquire(True, 3)
//!     for i in range(len(a)): a[i] = 1
//!     v.value = 100          # the seed wrote `v,value = 100`, a typo that changes nothing
//!     l.reverse()
//!
//! if __name__ == '__main__':
//!     with Manager() as manager:
//!         d = manager.dict()
//!         l = manager.list(range(10))
//!         q = manager.Queue(10)
//!         a = manager.Array('i', [1, 2, 3])
//!         v = manager.Value('i', 3)
//!         lo = manager.Lock()
//!         lo.acquire(True)
//!         p = Process(target=f, args=(d, l, q, a, v, lo))
//!         p.start()
//!         p.join()
//!         print(d)
//!         print(l)
//!         print("********")
//!         print(q.get())
//!         print(a[:])
//!         print(v.value)
//! ```
//!
//! Output:
//!
//! ```text
//! {1: '1', '2': 2, 0.25: None}
//! [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//! ********
//! 100
//! [1, 1, 1]
//! 100
//! ```
//!
//! The child receives one name, the manager's, instead of six. The seed's `acquire(True, 3)`
//! is `try_lock_for` (shortened to 300 ms here); like Python's, it returns after the timeout
//! and the child carries on.
//!
//! Run: `cargo run --example manager_objects`.

use serde::{Deserialize, Serialize};
use shm_core::SegmentName;
use shm_lock::LockTimeoutError;
use shm_manager::Manager;
use shm_process::{Role, Roles, Shared};
use std::error::Error;
use std::time::Duration;

/// A key as the seed's: an int, a str or a float.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Key {
    Int(i64),
    Str(String),
    Float(f64),
}

/// A value as the seed's: None, an int or a str.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Val {
    None,
    Int(i64),
    Str(String),
}

fn key_repr(k: &Key) -> String {
    match k {
        Key::Int(n) => n.to_string(),
        Key::Str(s) => format!("'{s}'"),
        Key::Float(x) => x.to_string(),
    }
}

fn val_repr(v: &Val) -> String {
    match v {
        Val::None => "None".into(),
        Val::Int(n) => n.to_string(),
        Val::Str(s) => format!("'{s}'"),
    }
}

/// The child's role: its argument is the manager, which holds all six objects.
const F: Role<Shared<Manager>> = Role::new("f");

/// The child: `f(d, l, q, a, v, lo)`, all found through the manager.
fn f(manager: Shared<Manager>) -> Result<(), Box<dyn Error>> {
    let manager = manager.open()?;
    let d = manager.dict::<Key, Val>("d")?;
    d.insert(&Key::Int(1), &Val::Str("1".into()))?;
    d.insert(&Key::Str("2".into()), &Val::Int(2))?;
    d.insert(&Key::Float(0.25), &Val::None)?;
    let q = manager.queue::<i64>("q", 10)?;
    q.producer()?.push(100)?;
    let lo = manager.lock("lo")?;
    match lo.try_lock_for(Duration::from_millis(300)) {
        Ok(_guard) => println!("child: got the lock"),
        Err(LockTimeoutError::Timeout) => println!("child: the lock is held; carrying on"),
        Err(e) => return Err(e.into()),
    }
    let a = manager.array::<i32>("a", &[])?;
    for i in 0..a.len() {
        a.set(i, 1)?;
    }
    manager.value::<i32>("v", 0)?.store(100);
    manager.list::<i64>("l")?.reverse()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(F, f).run();

    let manager = Manager::create(&SegmentName::unique())?;
    let d = manager.dict::<Key, Val>("d")?;
    let l = manager.list::<i64>("l")?;
    l.extend(&(0..10).collect::<Vec<i64>>())?;
    let q = manager.queue::<i64>("q", 10)?;
    let a = manager.array::<i32>("a", &[1, 2, 3])?;
    let v = manager.value::<i32>("v", 3)?;
    let lo = manager.lock("lo")?;
    let held = lo.lock()?;

    let mut p = F.builder(&manager.shared())?.start()?;
    let status = p.join()?;
    assert!(status.success(), "the child failed: {status:?}");
    drop(held);

    let items: Vec<String> = d
        .to_vec()?
        .iter()
        .map(|(k, v)| format!("{}: {}", key_repr(k), val_repr(v)))
        .collect();
    let dict = format!("{{{}}}", items.join(", "));
    let list = format!("{:?}", l.to_vec()?);
    let got = q.consumer()?.pop_timeout(Duration::from_secs(5))?;
    println!("{dict}");
    println!("{list}");
    println!("********");
    println!("{got}");
    println!("{:?}", a.to_vec());
    println!("{}", v.load());
    assert_eq!(dict, "{1: '1', '2': 2, 0.25: None}");
    assert_eq!(list, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    assert_eq!(got, 100);
    assert_eq!(a.to_vec(), [1, 1, 1]);
    assert_eq!(v.load(), 100);
    Ok(())
}
