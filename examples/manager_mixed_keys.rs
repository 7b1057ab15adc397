//! Seed 000's `Manager` program across real processes: ten children each write three keys of
//! mixed types into a shared dict and append to a shared list.
//!
//! ```python
//! def f(d, l, n):
//!     d[n] = ''
//!     d[''] = 2
//!     d[0.25] = None
//!     l.append(n)
//!     print(l)
//!
//! if __name__ == '__main__':
//!     with Manager() as manager:
//!         d = manager.dict()
//!         l = manager.list(range(5))
//!         p_list = []
//!         for i in range(10):
//!             p = Process(target=f, args=(d, l, i))
//!             p.start()
//!             p_list.append(p)
//!         for res in p_list:
//!             res.join()
//!         print(d)
//!         print(l)
//! ```
//!
//! Python's keys and values are dynamically typed; here they are two small serde enums
//! ([`Key`], [`Val`]), and the dict checks on open that every process uses the same ones. The
//! children get the manager's one name and ask it for `"d"` and `"l"`. No server process:
//! each `insert` and `push` is a short critical section in shared memory.
//!
//! Run: `cargo run --example manager_mixed_keys`.

use serde::{Deserialize, Serialize};
use shm_core::SegmentName;
use shm_manager::Manager;
use shm_process::{Role, Roles, Shared};
use std::error::Error;
use std::fmt;

/// A dict key as Python's: an int, a str or a float (compared by its bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Key {
    Int(i64),
    Str(String),
    Float(f64),
}

/// A dict value: None, an int or a str.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Val {
    None,
    Int(i64),
    Str(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "'{s}'"),
            Key::Float(x) => write!(f, "{x}"),
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::None => f.write_str("None"),
            Val::Int(n) => write!(f, "{n}"),
            Val::Str(s) => write!(f, "'{s}'"),
        }
    }
}

/// Python's `repr` of a dict and a list.
fn dict_repr(items: &[(Key, Val)]) -> String {
    let inner: Vec<String> = items.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn list_repr(items: &[i64]) -> String {
    let inner: Vec<String> = items.iter().map(i64::to_string).collect();
    format!("[{}]", inner.join(", "))
}

/// `f(d, l, n)`: the manager (which holds `d` and `l`) and `n`.
const F: Role<(Shared<Manager>, i64)> = Role::new("f");

/// The child: `f(d, l, n)`.
fn f((mgr, n): (Shared<Manager>, i64)) -> Result<(), Box<dyn Error>> {
    let mgr = mgr.open()?;
    let d = mgr.dict::<Key, Val>("d")?;
    let l = mgr.list::<i64>("l")?;
    d.insert(&Key::Int(n), &Val::Str(String::new()))?;
    d.insert(&Key::Str(String::new()), &Val::Int(2))?;
    d.insert(&Key::Float(0.25), &Val::None)?;
    l.push(&n)?;
    println!("{}", list_repr(&l.to_vec()?));
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(F, f).run();

    let manager = Manager::create(&SegmentName::unique())?;
    let d = manager.dict::<Key, Val>("d")?;
    let l = manager.list::<i64>("l")?;
    l.extend(&[0, 1, 2, 3, 4])?;

    let mut p_list = Vec::new();
    for i in 0..10 {
        p_list.push(F.builder(&(manager.shared(), i))?.start()?);
    }
    for mut p in p_list {
        let status = p.join()?;
        assert!(status.success(), "a child failed: {status:?}");
    }
    let items = d.to_vec()?;
    println!("{}", dict_repr(&items));
    println!("{}", list_repr(&l.to_vec()?));

    // Every child's writes are there: keys 0..10 map to '', '' to 2, 0.25 to None.
    assert_eq!(items.len(), 12);
    for n in 0..10 {
        assert!(
            items.contains(&(Key::Int(n), Val::Str(String::new()))),
            "{n}"
        );
    }
    assert!(items.contains(&(Key::Str(String::new()), Val::Int(2))));
    assert!(items.contains(&(Key::Float(0.25), Val::None)));
    let mut appended = l.to_vec()?;
    assert_eq!(appended.len(), 15);
    assert_eq!(appended[..5], [0, 1, 2, 3, 4]);
    appended[5..].sort();
    assert_eq!(appended[5..], (0..10).collect::<Vec<_>>());
    Ok(())
}
