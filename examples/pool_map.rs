//! Seed 003's pool section, across real worker processes: `apply_async` in a loop,
//! `map_async` with a chunk size, a `callback` and an `error_callback` over a function that
//! raises, and `starmap` / `starmap_async`.
//!
//! ```python
//! def proc_pool(name):
//!     for i in range(5): print(str(i) + ': %s')
//!     return "return Value"
//! def proc_err(name):
//!     raise Exception
//! def proc_mm(name):
//!     print('this function has been called %s %s' % (name, type(name)))
//!     return name
//!
//! if __name__ == '__main__':
//!     p = Pool(4)
//!     for i in range(5):
//!         p.apply_async(proc_pool, args=('cc',))
//!     mapr = p.map_async(proc_err, 'ee', 3, callback, err_callback)
//!     mmap = p.starmap(proc_mm, ('abc',),)
//!     mmaps = p.starmap_async(proc_mm, ('abc',),)
//!     print(mmaps.get())
//!     p.close()
//!     p.join()
//! ```
//!
//! Differences, on purpose: the seed's `starmap(proc_mm, ('abc',))` unpacks the string `'abc'`
//! into three calls by accident; here each item is an explicit argument tuple, and a
//! two-argument function shows what starmap is for. The program checks every value, that the
//! error callback (and not the callback) ran once with the task's error, and exits with code 1
//! if anything is off.
//!
//! Run: `cargo run --example pool_map`.

use shm_process::pool::{Callbacks, Pool, Registry, Task, TaskError};
use std::sync::{Arc, Mutex};

struct Tasks {
    proc_pool: Task<String, String>,
    proc_err: Task<char, ()>,
    proc_mm: Task<(String,), String>,
    repeat: Task<(String, usize), String>,
}

fn tasks(registry: &mut Registry) -> Tasks {
    Tasks {
        proc_pool: registry.register("proc_pool", |name: String| {
            for i in 0..5 {
                println!("{i}: {name}");
            }
            "return Value".to_owned()
        }),
        proc_err: registry.register_fallible("proc_err", |c: char| {
            Err::<(), String>(format!("Exception (item {c:?})"))
        }),
        proc_mm: registry.register_star("proc_mm", |name: String| {
            println!("this function has been called {name} String");
            name
        }),
        repeat: registry.register_star("repeat", |s: String, n: usize| s.repeat(n)),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::new();
    let t = tasks(&mut registry);
    registry.serve_if_worker();

    println!("start the pool");
    let p = Pool::builder(&registry).processes(4).create()?;
    let started: Vec<_> = (0..5)
        .map(|_| p.apply_async(&t.proc_pool, "cc".to_owned()))
        .collect::<Result<_, _>>()?;

    let errors = Arc::new(Mutex::new(Vec::<TaskError>::new()));
    let values = Arc::new(Mutex::new(0usize));
    let (e2, v2) = (errors.clone(), values.clone());
    let mapr = p.map_async_with(
        &t.proc_err,
        "ee".chars(),
        Some(3),
        Callbacks::new()
            .callback(move |_: &Vec<()>| *v2.lock().unwrap() += 1)
            .error_callback(move |e| {
                println!("error callback: {e}");
                e2.lock().unwrap().push(e.clone());
            }),
    )?;

    let mmap = p.starmap(&t.proc_mm, [("abc".to_owned(),), ("A".to_owned(),)])?;
    let mmaps = p.starmap_async(&t.proc_mm, [("abc".to_owned(),)], None, Callbacks::new())?;
    let reps = p.starmap(&t.repeat, [("ab".to_owned(), 2), ("c".to_owned(), 3)])?;
    println!("{mmap:?} {reps:?}");
    let mmaps = mmaps.get()?;
    println!("{mmaps:?}");

    mapr.wait();
    check(
        mapr.successful() == Some(false),
        "map_async of proc_err succeeded",
    );
    let err = mapr.get().err();
    p.close();
    p.join()?;

    for r in started {
        let v = r.get()?;
        check(v == "return Value", format!("proc_pool gave {v:?}"));
    }
    check(mmap == ["abc", "A"], format!("starmap gave {mmap:?}"));
    check(mmaps == ["abc"], format!("starmap_async gave {mmaps:?}"));
    check(
        reps == ["abab", "ccc"],
        format!("starmap(repeat) gave {reps:?}"),
    );
    let errors = errors.lock().unwrap().clone();
    check(
        errors.len() == 1,
        format!("{} error callbacks, expected 1", errors.len()),
    );
    check(*values.lock().unwrap() == 0, "the success callback ran");
    check(
        matches!(&errors[0], TaskError::Failed { task, message }
            if &**task == "proc_err" && message.starts_with("Exception")),
        format!("error callback got {:?}", errors[0]),
    );
    check(
        err.as_ref() == Some(&errors[0]),
        format!("get() gave {err:?}"),
    );
    println!("pool_map: all checks passed");
    Ok(())
}

fn check(ok: bool, what: impl Into<String>) {
    if !ok {
        eprintln!("pool_map: WRONG: {}", what.into());
        std::process::exit(1);
    }
}
