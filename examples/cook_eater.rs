//! Seed 004's producer/consumer model across real processes: a cook process makes dishes and
//! puts them in a shared queue, an eater process takes them out and eats them, each at its own
//! pace; the queue decouples the fast side from the slow one.
//!
//! ```python
//! def eat(q):
//!     for i in range(10):
//!         rose = q.get()
//!         time.sleep(random.randint(0, 2))
//!         print(rose, "吃完了!")
//!
//! def make_rose(q):
//!     for i in range(10):
//!         time.sleep(random.randint(0, 2))
//!         print("第%s盘青椒肉丝制作完成!" % i)
//!         rose = "第%s盘青椒肉丝" % i
//!         q.put(rose)
//!
//! if __name__ == '__main__':
//!     q = Queue()
//!     make_p = Process(target=make_rose, args=(q,))
//!     eat_p = Process(target=eat, args=(q,))
//!     make_p.start()
//!     eat_p.start()
//! ```
//!
//! Differences, on purpose: a dish is a fixed-size record (`Dish`), not a pickled string; the
//! queue holds at most 3 dishes (Python's `Queue(3)` from the same seed), so a cook that is
//! far ahead waits; the eater does not count to 10 but eats until the cook has gone home (its
//! `pop` returns `Disconnected` once the queue is empty and the cook's handle is dropped, or
//! the cook died). Sleeps are 0–200 ms instead of 0–2 s.
//!
//! Run: `cargo run --example cook_eater`. The parent creates the queue, starts both processes
//! with its name (a typed `Shared<SpscQueue<Dish>>` each opens), waits for them, and removes
//! the queue when it ends.

use shm_core::SegmentName;
use shm_process::{Role, Roles, Shared};
use shm_queue::{PopError, SpscQueue};
use std::error::Error;
use std::time::Duration;

shm_core::record! {
    /// One plate: its number and how long it took to cook.
    #[derive(Debug, Clone, Copy)]
    struct Dish { number: u32, cook_ms: u32 }
}

const DISHES: u32 = 10;

/// A small xorshift generator seeded from the pid and the clock (no crate needed).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(t ^ (u64::from(std::process::id()) << 32) | 1)
    }

    /// A random whole number of milliseconds in 0..=200, stepping by 10.
    fn pause_ms(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 21) as u32 * 10
    }
}

/// `make_rose(q)`: the queue the cook puts dishes in.
const COOK: Role<Shared<SpscQueue<Dish>>> = Role::new("cook");
/// `eat(q)`: the queue the eater takes dishes from.
const EATER: Role<Shared<SpscQueue<Dish>>> = Role::new("eater");

/// The cook process: `make_rose(q)`.
fn cook(q: Shared<SpscQueue<Dish>>) -> Result<(), Box<dyn Error>> {
    let q = q.open()?;
    let mut counter = q.producer()?;
    let mut rng = Rng::new();
    for number in 0..DISHES {
        let cook_ms = rng.pause_ms();
        std::thread::sleep(Duration::from_millis(cook_ms.into()));
        println!("cook: plate #{number} of green-pepper shredded pork is ready ({cook_ms} ms)");
        // Fails (`Disconnected`) if the eater is gone: nobody to serve.
        counter.push(Dish { number, cook_ms })?;
    }
    println!("cook: all {DISHES} plates served, going home");
    Ok(()) // dropping `counter` tells the eater that no more dishes will come
}

/// The eater process: `eat(q)`.
fn eater(q: Shared<SpscQueue<Dish>>) -> Result<(), Box<dyn Error>> {
    let q = q.open()?;
    let mut table = q.consumer()?;
    let mut rng = Rng::new();
    let mut eaten = 0;
    loop {
        match table.pop() {
            Ok(dish) => {
                std::thread::sleep(Duration::from_millis(rng.pause_ms().into()));
                println!("eater: plate #{} eaten!", dish.number);
                eaten += 1;
            }
            Err(PopError::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
    }
    println!("eater: the cook went home; {eaten} plates eaten");
    if eaten == DISHES {
        Ok(())
    } else {
        Err(format!("{eaten} plates eaten, {DISHES} cooked").into())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new()
        .register(COOK, cook)
        .register(EATER, eater)
        .run();

    // The parent: create the shared queue, start both processes, wait for them.
    let name = SegmentName::unique();
    let q = SpscQueue::<Dish>::builder(&name).capacity(3).create()?;
    let mut make_p = COOK.builder(&Shared::new(&name))?.start()?;
    let mut eat_p = EATER.builder(&Shared::new(&name))?.start()?;
    let cooked = make_p.join()?;
    let ate = eat_p.join()?;
    println!(
        "cook: {cooked}; eater: {ate}; dishes left on the counter: {}",
        q.len()
    );
    if cooked.success() && ate.success() {
        Ok(())
    } else {
        Err("a process failed".into())
    }
}
