//! Seed 001's process pool, across real worker processes: `apply` (synchronous),
//! `apply_async` with `close`/`join`, collecting results in submission order, and a callback
//! that runs in the parent.
//!
//! ```python
//! def fun(i):
//!     print("pid 进程是%s,num是%s" % (os.getpid(), i))
//!     time.sleep(0.5)
//!     return i
//! def call_back(i):
//!     print("this is callback", i)
//!
//! if __name__ == '__main__':
//!     p = Pool(4)
//!     for i in range(20):
//!         p.apply(fun, args=(i,))              # one at a time: synchronous
//!     p_lst = [p.apply_async(fun, args=(i,)) for i in range(20)]
//!     p.close()
//!     p.join()
//!     [print(i.get()) for i in p_lst]           # results in submission order
//!     p = Pool(4)
//!     for i in range(10):
//!         p.apply_async(func=fun, args=(i,), callback=call_back)
//!     p.close()
//!     p.join()
//! ```
//!
//! Differences, on purpose: tasks sleep 20 ms instead of 0.5 s; the program checks what it
//! prints (results in order, every callback ran once, in the parent's result thread, with the
//! right value) and exits with code 1 if anything is off.
//!
//! Run: `cargo run --example pool_apply`. The same binary is the parent and the workers.

use shm_process::pool::{Callbacks, Pool, Registry, Task};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tasks of this program, registered in the parent and in every worker alike.
struct Tasks {
    fun: Task<u32, u32>,
}

fn tasks(registry: &mut Registry) -> Tasks {
    Tasks {
        fun: registry.register("fun", |i: u32| {
            println!("pid 进程是{},num是{i}", std::process::id());
            std::thread::sleep(Duration::from_millis(20));
            i
        }),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::new();
    let t = tasks(&mut registry);
    registry.serve_if_worker(); // a worker serves tasks here and exits

    // apply: synchronous, one task at a time.
    let p = Pool::builder(&registry).processes(4).create()?;
    for i in 0..8 {
        let got = p.apply(&t.fun, i)?;
        check(got == i, format!("apply({i}) gave {got}"));
    }

    // apply_async, close, join, then the results in submission order.
    let results: Vec<_> = (0..20)
        .map(|i| p.apply_async(&t.fun, i))
        .collect::<Result<_, _>>()?;
    p.close();
    p.join()?;
    for (i, r) in results.into_iter().enumerate() {
        check(r.ready(), format!("result {i} not ready after join"));
        let v = r.get()?;
        println!("{v}");
        check(v == i as u32, format!("result {i} is {v}"));
    }

    // A callback per task, run in the parent's result thread.
    let p = Pool::builder(&registry).processes(4).create()?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    for i in 0..10 {
        let seen = seen.clone();
        p.apply_async_with(
            &t.fun,
            i,
            Callbacks::new().callback(move |v: &u32| {
                println!("this is callback {v}");
                let thread = std::thread::current().name().map(str::to_owned);
                seen.lock().unwrap().push((*v, thread));
            }),
        )?;
    }
    p.close();
    p.join()?;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    check(
        seen.len() == 10,
        format!("{} callbacks ran, expected 10", seen.len()),
    );
    for (i, (v, thread)) in seen.iter().enumerate() {
        check(*v == i as u32, format!("callback {i} got {v}"));
        check(
            thread.as_deref() != Some("main"),
            "a callback ran in the main thread",
        );
    }
    println!("pool_apply: all checks passed");
    Ok(())
}

fn check(ok: bool, what: impl Into<String>) {
    if !ok {
        eprintln!("pool_apply: WRONG: {}", what.into());
        std::process::exit(1);
    }
}
