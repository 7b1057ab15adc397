//! Seed 002's `Manager` program across real processes: a child fills a shared dict with
//! values of two types and reverses a shared list; the parent prints both.
//!
//! ```python
//! def f(d, l):
//!     d["name"] = "zhangyanlin"
//!     d["age"] = 18
//!     d["Job"] = "pythoner"
//!     l.reverse()
//!
//! if __name__ == "__main__":
//!     with Manager() as man:
//!         d = man.dict()
//!         l = man.list(range(10))
//!         p = Process(target=f, args=(d, l))
//!         p.start()
//!         p.join()
//!         print(d)
//!         print(l)
//! ```
//!
//! Output, as Python's:
//!
//! ```text
//! {'name': 'zhangyanlin', 'age': 18, 'Job': 'pythoner'}
//! [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//! ```
//!
//! The dict keeps insertion order, as Python's does. The child gets the manager's one name.
//!
//! Run: `cargo run --example manager_reverse`.

use serde::{Deserialize, Serialize};
use shm_core::SegmentName;
use shm_manager::Manager;
use shm_process::{Role, Roles, Shared};
use std::error::Error;

/// A value as the seed uses them: a str or an int.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Val {
    Str(String),
    Int(i64),
}

fn repr(v: &Val) -> String {
    match v {
        Val::Str(s) => format!("'{s}'"),
        Val::Int(n) => n.to_string(),
    }
}

/// The child's role: its argument is the manager, which holds `d` and `l`.
const F: Role<Shared<Manager>> = Role::new("f");

/// The child: `f(d, l)`.
fn f(man: Shared<Manager>) -> Result<(), Box<dyn Error>> {
    let man = man.open()?;
    let d = man.dict::<String, Val>("d")?;
    d.insert("name", &Val::Str("zhangyanlin".into()))?;
    d.insert("age", &Val::Int(18))?;
    d.insert("Job", &Val::Str("pythoner".into()))?;
    man.list::<i64>("l")?.reverse()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(F, f).run();

    let man = Manager::create(&SegmentName::unique())?;
    let d = man.dict::<String, Val>("d")?;
    let l = man.list::<i64>("l")?;
    l.extend(&(0..10).collect::<Vec<i64>>())?;

    let mut p = F.builder(&man.shared())?.start()?;
    let status = p.join()?;
    assert!(status.success(), "the child failed: {status:?}");

    let items: Vec<String> = d
        .to_vec()?
        .iter()
        .map(|(k, v)| format!("'{k}': {}", repr(v)))
        .collect();
    let dict = format!("{{{}}}", items.join(", "));
    let list = format!("{:?}", l.to_vec()?);
    println!("{dict}");
    println!("{list}");
    assert_eq!(
        dict,
        "{'name': 'zhangyanlin', 'age': 18, 'Job': 'pythoner'}"
    );
    assert_eq!(list, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    Ok(())
}
