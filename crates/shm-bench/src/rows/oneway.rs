//! The one loop shape of every one-way message-rate line (`queue-tp`): ours between two
//! processes, `rtrb` and `ArrayQueue` between two threads.
//!
//! Every such line runs [`produce`] on the measuring side and [`consume`] on the other, so no
//! line pays for something another does not:
//! - the producer spins on a non-blocking push (ours: `try_push` or `push_slice`, never a timed
//!   push); after [`CHECK_EVERY`] failed tries in a row it yields once and reads the clock once
//!   (the patience check), and nothing else: no clock read, deadline or shared store per item;
//! - the consumer spins on a non-blocking pop; it stores its count in the ack word once every
//!   [`ACK_EVERY`] items and on every empty poll, and yields (and reads the clock) once every
//!   [`CHECK_EVERY`] empty polls in a row;
//! - the measuring side waits for the ack of a whole batch at the end of each batch
//!   ([`crate::harness::spin_until`]).
//!
//! What differs is only what the comparison is about: our consumer is another process, the
//! peers' another thread.

use crate::error::BoxError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failed tries (or empty polls) between two yields and patience checks.
pub const CHECK_EVERY: u32 = 1024;
/// The consumer publishes its count at least once every this many items.
pub const ACK_EVERY: u64 = 256;

/// The idle side of a spin loop: a spin hint per failed try, and every [`CHECK_EVERY`] tries a
/// yield and one clock read, which fails once `progress` has not moved for `patience`.
#[derive(Debug)]
pub struct Idle {
    tries: u32,
    patience: Duration,
    mark: Option<(u64, Instant)>,
}

impl Idle {
    /// An idle counter that gives up after `patience` without progress.
    pub fn new(patience: Duration) -> Idle {
        Idle {
            tries: 0,
            patience,
            mark: None,
        }
    }

    /// One failed try, with the caller's progress counter (items moved so far). `Err` once
    /// `progress` has not changed for the patience.
    #[inline]
    pub fn spin(&mut self, progress: u64) -> Result<(), BoxError> {
        self.tries = self.tries.wrapping_add(1);
        if self.tries.is_multiple_of(CHECK_EVERY) {
            self.check(progress)
        } else {
            std::hint::spin_loop();
            Ok(())
        }
    }

    #[cold]
    fn check(&mut self, progress: u64) -> Result<(), BoxError> {
        std::thread::yield_now();
        let now = Instant::now();
        match self.mark {
            Some((p, since)) if p == progress => {
                if now.duration_since(since) >= self.patience {
                    return Err(format!(
                        "no progress for {:?} (stuck at {progress} items)",
                        self.patience
                    )
                    .into());
                }
            }
            _ => self.mark = Some((progress, now)),
        }
        Ok(())
    }
}

/// Pushes items `0..m` through `push(next, left)`, which pushes up to `left` items starting at
/// item number `next` without waiting and returns how many it pushed (0: full), or an error
/// that ends the batch. Spins with [`Idle`] while nothing goes in.
#[inline]
pub fn produce(
    m: u64,
    patience: Duration,
    mut push: impl FnMut(u64, u64) -> Result<u64, BoxError>,
) -> Result<(), BoxError> {
    let mut idle = Idle::new(patience);
    let mut done = 0u64;
    while done < m {
        let k = push(done, m - done)?;
        if k == 0 {
            idle.spin(done)?;
        } else {
            done += k;
        }
    }
    Ok(())
}

/// One non-blocking pop, as [`consume`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop {
    /// This many items were taken (≥ 1).
    Got(u64),
    /// Nothing there now.
    Empty,
    /// Nothing there, and nothing will come: the producer is gone (or told us to stop).
    End,
}

/// Pops through `pop` until it says [`Pop::End`]; publishes the count in `ack` as the module
/// says. Returns the number of items taken.
#[inline]
pub fn consume(
    ack: &AtomicU64,
    patience: Duration,
    mut pop: impl FnMut() -> Result<Pop, BoxError>,
) -> Result<u64, BoxError> {
    let mut idle = Idle::new(patience);
    let mut got = 0u64;
    let mut acked = 0u64;
    loop {
        match pop()? {
            Pop::Got(k) => {
                got += k;
                if got - acked >= ACK_EVERY {
                    ack.store(got, Ordering::Release);
                    acked = got;
                }
            }
            Pop::Empty => {
                ack.store(got, Ordering::Release);
                acked = got;
                idle.spin(got)?;
            }
            Pop::End => {
                ack.store(got, Ordering::Release);
                return Ok(got);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// The producer pushes every item once, in order, through pushes that take fewer than
    /// asked and sometimes none; the consumer counts them all and acknowledges the total.
    #[test]
    fn produce_and_consume_move_every_item() {
        let mut q = VecDeque::new();
        let mut refuse = 0u32;
        produce(1000, Duration::from_secs(5), |next, left| {
            refuse += 1;
            if refuse.is_multiple_of(3) {
                return Ok(0);
            }
            let k = left.min(7);
            q.extend(next..next + k);
            Ok(k)
        })
        .unwrap();
        assert!(q.iter().copied().eq(0..1000));
        let ack = AtomicU64::new(0);
        let mut empties = 0;
        let got = consume(&ack, Duration::from_secs(5), || {
            Ok(match q.pop_front() {
                Some(_) => Pop::Got(1),
                None if empties < 5 => {
                    empties += 1;
                    Pop::Empty
                }
                None => Pop::End,
            })
        })
        .unwrap();
        assert_eq!(got, 1000);
        assert_eq!(ack.load(Ordering::Relaxed), 1000);
    }

    /// A producer whose pushes never succeed gives up after its patience, with an error.
    #[test]
    fn a_stuck_producer_gives_up() {
        let t = Instant::now();
        let e = produce(1, Duration::from_millis(50), |_, _| Ok(0)).unwrap_err();
        assert!(e.to_string().contains("no progress"), "{e}");
        assert!(t.elapsed() >= Duration::from_millis(50));
        let e = produce(1, Duration::from_secs(5), |_, _| Err("closed".into())).unwrap_err();
        assert_eq!(e.to_string(), "closed");
    }

    /// A consumer that sees only empty polls gives up too, and a pop's error passes through.
    #[test]
    fn a_starved_consumer_gives_up_and_errors_pass() {
        let ack = AtomicU64::new(0);
        let e = consume(&ack, Duration::from_millis(50), || Ok(Pop::Empty)).unwrap_err();
        assert!(e.to_string().contains("no progress"), "{e}");
        let e = consume(&ack, Duration::from_secs(5), || Err("corrupt".into())).unwrap_err();
        assert_eq!(e.to_string(), "corrupt");
    }
}
