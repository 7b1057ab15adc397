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
//! Every object is removed when the parent's handle drops. The demo checks each result and
//! exits non-zero if one is wrong.

use serde::Serialize;
use shm_array::Array;
use shm_core::SegmentName;
use shm_lock::{Event, Lock, LockError};
use shm_process::{Process, Role, Roles, Shared};
use shm_queue::{PopError, SpscQueue};
use shm_value::Value;
use std::time::Duration;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The shared double and the shared array of ints, as `negate` receives them.
type NumArr = (Shared<Value<f64>>, Shared<Array<i32>>);

/// Sets the value and negates the array.
const NEGATE: Role<NumArr> = Role::new("negate");
/// Adds 1 000 to the counter.
const COUNT: Role<Shared<Value<i64>>> = Role::new("count");
/// Pushes 1..=100 000 into the queue.
const PRODUCE: Role<Shared<SpscQueue<u64>>> = Role::new("produce");
/// Takes the lock, sets the event, and waits to be killed.
const HOLD_LOCK: Role<(Shared<Lock>, Shared<Event>)> = Role::new("hold-lock");

fn child_negate((num, arr): NumArr) -> Res {
    let (num, arr) = (num.open()?, arr.open()?);
    num.store(3.333333333333333);
    for i in 0..arr.len() {
        arr.set(i, -arr.get(i)?)?;
    }
    Ok(())
}

fn child_count(counter: Shared<Value<i64>>) -> Res {
    let counter = counter.open()?;
    for _ in 0..1000 {
        counter.update(|x| x + 1)?;
    }
    Ok(())
}

fn child_produce(q: Shared<SpscQueue<u64>>) -> Res {
    let q = q.open()?;
    let mut producer = q.producer()?;
    for i in 1..=100_000u64 {
        producer.push(i)?;
    }
    Ok(())
}

fn child_hold_lock((lock, holding): (Shared<Lock>, Shared<Event>)) -> Res {
    let (lock, holding) = (lock.open()?, holding.open()?);
    let _guard = lock.lock()?;
    holding.set();
    std::thread::sleep(Duration::from_secs(60)); // killed long before this ends
    Ok(())
}

/// Starts a daemon child in `role` with `args`.
fn start<A: Serialize>(role: Role<A>, args: &A) -> Res<Process> {
    Ok(role.builder(args)?.daemon(true).start()?)
}

/// An error saying `what` unless `ok`: the demo exits non-zero on a wrong result.
fn check(ok: bool, what: &str) -> Res {
    if ok {
        Ok(())
    } else {
        Err(what.into())
    }
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
        .register(NEGATE, child_negate)
        .register(COUNT, child_count)
        .register(PRODUCE, child_produce)
        .register(HOLD_LOCK, child_hold_lock)
        .run();

    println!("1. Value('d') and Array('i', range(11)), changed by a child process");
    let (n_num, n_arr) = (SegmentName::unique(), SegmentName::unique());
    let num = Value::<f64>::create(&n_num, 0.0)?;
    let arr = Array::<i32>::create_from(&n_arr, &(0..11).collect::<Vec<_>>())?;
    join_ok(start(NEGATE, &(Shared::new(&n_num), Shared::new(&n_arr)))?)?;
    println!("   num = {}  arr = {:?}", num.load(), arr.to_vec());
    check(
        num.load() == 3.333333333333333,
        "num is not 3.333333333333333",
    )?;
    check(
        arr.to_vec() == (0..11).map(|i| -i).collect::<Vec<_>>(),
        "arr is not negated",
    )?;

    println!("2. 4 processes x 1000 locked increments with Value::update");
    let n_counter = SegmentName::unique();
    let counter = Value::<i64>::create(&n_counter, 0)?;
    let kids = (0..4)
        .map(|_| start(COUNT, &Shared::new(&n_counter)))
        .collect::<Res<Vec<_>>>()?;
    for k in kids {
        join_ok(k)?;
    }
    println!(
        "   counter = {} (Python's unlocked v.value += 1 loses updates)",
        counter.load()
    );
    check(counter.load() == 4000, "counter is not 4000")?;

    println!("3. SPSC queue: a child pushes 1..=100000, the parent pops");
    let n_q = SegmentName::unique();
    let q = SpscQueue::<u64>::builder(&n_q).capacity(1024).create()?;
    let mut consumer = q.consumer()?;
    let child = start(PRODUCE, &Shared::new(&n_q))?;
    let (mut sum, mut n) = (0u64, 0u64);
    loop {
        match consumer.pop() {
            Ok(v) => {
                sum += v;
                n += 1;
            }
            Err(PopError::Disconnected) => break, // drained and the producer is gone
            Err(e) => return Err(e.into()),
        }
    }
    join_ok(child)?;
    println!(
        "   popped {n} items, sum {sum} (expected {})",
        100_000u64 * 100_001 / 2
    );
    check(
        n == 100_000 && sum == 100_000 * 100_001 / 2,
        "items lost or wrong",
    )?;

    println!("4. A Lock whose holder is killed with SIGKILL");
    let (n_lock, n_ev) = (SegmentName::unique(), SegmentName::unique());
    let lock = Lock::builder(&n_lock).create()?;
    let holding = Event::builder(&n_ev).create()?;
    let mut holder = start(HOLD_LOCK, &(Shared::new(&n_lock), Shared::new(&n_ev)))?;
    if !holding.wait_timeout(Duration::from_secs(30)) {
        return Err("the child never took the lock".into());
    }
    holder.kill()?;
    holder.join()?;
    match lock.lock() {
        Ok(_) => return Err("unexpected: the lock was free".into()),
        Err(LockError::OwnerDied) => {
            println!("   lock() -> OwnerDied: its holder died; recover() takes it anyway");
            let guard = lock.recover()?;
            guard.mark_consistent();
        }
        Err(e) => return Err(e.into()),
    }
    let again = lock.try_lock().is_ok();
    println!("   lock() again -> {}", if again { "Ok" } else { "busy" });
    check(again, "the recovered lock is still busy")?;
    println!("done: every segment is removed as the handles drop");
    Ok(())
}
