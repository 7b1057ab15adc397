//! A tour of shm-ipc across real processes: `cargo run --example demo`.
//!
//! The parent creates named objects and starts children (the current executable again, in a
//! named role, as Python's spawn start method does) that open them by name:
//!
//! 1. `Value('d')` and `Array('i', range(11))`: a child sets the value and negates the array
//!    (seed 002).
//! 2. `Value('q')` with its lock: 4 children add 1 000 each with `update`, which cannot lose an
//!    update (Python's `v.value += 1` can).
//! 3. An SPSC queue: a child pushes 1..=100 000, the parent sums what it pops.
//! 4. A `Lock` whose holder is SIGKILLed: the next `lock()` gets the lock *and* an owner-died
//!    indication, where Python's `multiprocessing.Lock` stays locked forever.
//!
//! Every object is removed when the parent's handle drops.

use shm_array::Array;
use shm_core::SegmentName;
use shm_lock::{Event, Lock, LockError};
use shm_process::{Process, Roles};
use shm_queue::{PopError, SpscQueue};
use shm_value::Value;
use std::time::Duration;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn name(arg: &str) -> Res<SegmentName> {
    Ok(SegmentName::new(arg)?)
}

fn child_negate(args: &[String]) -> Res {
    let num = Value::<f64>::open(&name(&args[0])?)?;
    let arr = Array::<i32>::open(&name(&args[1])?)?;
    num.store(3.333333333333333);
    for i in 0..arr.len() {
        arr.set(i, -arr.get(i)?)?;
    }
    Ok(())
}

fn child_count(args: &[String]) -> Res {
    let counter = Value::<i64>::open(&name(&args[0])?)?;
    for _ in 0..1000 {
        counter.update(|x| x + 1)?;
    }
    Ok(())
}

fn child_produce(args: &[String]) -> Res {
    let q = SpscQueue::<u64>::builder(&name(&args[0])?).open()?;
    let mut producer = q.producer()?;
    for i in 1..=100_000u64 {
        producer.push(i)?;
    }
    Ok(())
}

fn child_hold_lock(args: &[String]) -> Res {
    let lock = Lock::builder(&name(&args[0])?).open()?;
    let holding = Event::builder(&name(&args[1])?).open()?;
    let _guard = lock.lock()?;
    holding.set();
    std::thread::sleep(Duration::from_secs(60)); // killed long before this ends
    Ok(())
}

fn role(f: fn(&[String]) -> Res) -> impl FnOnce(&[String]) -> i32 {
    move |args| match f(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child failed: {e}");
            1
        }
    }
}

fn start(role: &str, args: &[&SegmentName]) -> Res<Process> {
    Ok(Process::builder(role)
        .args(args.iter().map(|n| n.as_str().to_owned()))
        .daemon(true)
        .start()?)
}

fn join_ok(mut p: Process) -> Res {
    let status = p.join()?;
    if !status.success() {
        return Err(format!("child {} ended with {status}", p.role()).into());
    }
    Ok(())
}

fn main() -> Res {
    Roles::new()
        .role("negate", role(child_negate))
        .role("count", role(child_count))
        .role("produce", role(child_produce))
        .role("hold-lock", role(child_hold_lock))
        .run();

    println!("1. Value('d') and Array('i', range(11)), changed by a child process");
    let (n_num, n_arr) = (SegmentName::unique(), SegmentName::unique());
    let num = Value::<f64>::create(&n_num, 0.0)?;
    let arr = Array::<i32>::create_from(&n_arr, &(0..11).collect::<Vec<_>>())?;
    join_ok(start("negate", &[&n_num, &n_arr])?)?;
    println!("   num = {}  arr = {:?}", num.load(), arr.to_vec());

    println!("2. 4 processes x 1000 locked increments with Value::update");
    let n_counter = SegmentName::unique();
    let counter = Value::<i64>::create(&n_counter, 0)?;
    let kids = (0..4)
        .map(|_| start("count", &[&n_counter]))
        .collect::<Res<Vec<_>>>()?;
    for k in kids {
        join_ok(k)?;
    }
    println!(
        "   counter = {} (Python's unlocked v.value += 1 loses updates)",
        counter.load()
    );

    println!("3. SPSC queue: a child pushes 1..=100000, the parent pops");
    let n_q = SegmentName::unique();
    let q = SpscQueue::<u64>::builder(&n_q).capacity(1024).create()?;
    let mut consumer = q.consumer()?;
    let child = start("produce", &[&n_q])?;
    let (mut sum, mut n) = (0u64, 0u64);
    loop {
        match consumer.pop() {
            Ok(v) => {
                sum += v;
                n += 1;
            }
            Err(PopError::Disconnected) => break, // drained and the producer is gone
            Err(e) => return Err(e.to_string().into()),
        }
    }
    join_ok(child)?;
    println!(
        "   popped {n} items, sum {sum} (expected {})",
        100_000u64 * 100_001 / 2
    );

    println!("4. A Lock whose holder is killed with SIGKILL");
    let (n_lock, n_ev) = (SegmentName::unique(), SegmentName::unique());
    let lock = Lock::builder(&n_lock).create()?;
    let holding = Event::builder(&n_ev).create()?;
    let mut holder = start("hold-lock", &[&n_lock, &n_ev])?;
    if !holding.wait_timeout(Duration::from_secs(30)) {
        return Err("the child never took the lock".into());
    }
    holder.kill()?;
    holder.join()?;
    match lock.lock() {
        Ok(_) => println!("   unexpected: the lock was free"),
        Err(LockError::OwnerDied) => {
            println!("   lock() -> OwnerDied: its holder died; recover() takes it anyway");
            let guard = lock.recover()?;
            guard.mark_consistent();
        }
        Err(e) => return Err(e.into()),
    }
    println!(
        "   lock() again -> {}",
        if lock.try_lock().is_ok() {
            "Ok"
        } else {
            "busy"
        }
    );
    println!("done: every segment is removed as the handles drop");
    Ok(())
}
