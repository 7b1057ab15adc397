//! Multi-process tests of the MPMC ring with real children (`shm-itest`, roles `queue.*`).
//!
//! No test asserts a duration; a watchdog kills the children of a hung test. The transfer
//! test moves 3 x 1M items (debug builds included).
#![cfg(target_os = "linux")]

use shm_core::sync::atomic::Ordering;
use shm_core::SegmentName;
use shm_itest::{start, SharedCounter, Watchdog};
use shm_process::Process;
use shm_queue::MpmcQueue;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CHILD: &str = shm_itest::child_binary!();
const PER_PRODUCER: u64 = 1_000_000;

/// A temporary output file removed on drop.
struct OutFile(PathBuf);

impl OutFile {
    fn new() -> OutFile {
        let n = SegmentName::unique();
        OutFile(std::env::temp_dir().join(format!("shm-queue-test-{}", n.as_str())))
    }

    fn read(&self) -> Vec<u64> {
        let bytes = std::fs::read(&self.0).expect("consumer output");
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Checks one consumer's items: each producer's items in increasing order. Returns them.
fn check_order(got: &[u64]) {
    let mut last: HashMap<u64, u64> = HashMap::new();
    for &v in got {
        let (tag, i) = (v >> 32, v & 0xffff_ffff);
        if let Some(&l) = last.get(&tag) {
            assert!(i > l, "producer {tag}: item {i} after {l}");
        }
        last.insert(tag, i);
    }
}

#[test]
fn three_producers_two_consumers_exactly_once_in_order() {
    let name = SegmentName::unique();
    let q = MpmcQueue::<u64>::builder(&name)
        .capacity(1024)
        .create()
        .unwrap();
    // Held until every producer child has finished, so that consumers cannot see "all
    // producers gone" before the last child has attached.
    let guard = q.producer().unwrap();
    let outs = [OutFile::new(), OutFile::new()];
    let mut consumers: Vec<Process> = outs
        .iter()
        .map(|o| {
            start(
                CHILD,
                "queue.mpmc-consume",
                &[name.as_str(), o.0.to_str().unwrap()],
            )
        })
        .collect();
    let n = PER_PRODUCER.to_string();
    let mut producers: Vec<Process> = (1..=3u64)
        .map(|tag| {
            start(
                CHILD,
                "queue.mpmc-produce",
                &[name.as_str(), &tag.to_string(), &n],
            )
        })
        .collect();
    let _dog = Watchdog::watching(
        producers
            .iter()
            .chain(&consumers)
            .map(|p| p.pid())
            .collect::<Vec<u32>>(),
    );
    for p in &mut producers {
        let s = p.join().unwrap();
        assert!(s.success(), "producer: {s}");
    }
    drop(guard);
    for c in &mut consumers {
        let s = c.join().unwrap();
        assert!(s.success(), "consumer: {s}");
    }
    let mut all = Vec::new();
    for o in &outs {
        let got = o.read();
        check_order(&got);
        all.extend(got);
    }
    all.sort_unstable();
    let want: Vec<u64> = (1..=3u64)
        .flat_map(|t| (0..PER_PRODUCER).map(move |i| (t << 32) | i))
        .collect();
    assert!(
        all == want,
        "items lost or repeated ({} vs {})",
        all.len(),
        want.len()
    );
    assert!(q.is_empty());
}

/// One producer is SIGKILLed mid-stream while another finishes: the consumers get every
/// item whose push returned, exactly once and in order, then Disconnected; nobody hangs.
#[test]
fn killed_producer_every_returned_push_delivered_then_disconnected() {
    let name = SegmentName::unique();
    let cname = SegmentName::unique();
    let cseg = SharedCounter::create(&cname);
    let counter = cseg.get();
    let q = MpmcQueue::<u64>::builder(&name)
        .capacity(16)
        .create()
        .unwrap();
    let guard = q.producer().unwrap();
    let outs = [OutFile::new(), OutFile::new()];
    let mut consumers: Vec<Process> = outs
        .iter()
        .map(|o| {
            start(
                CHILD,
                "queue.mpmc-consume",
                &[name.as_str(), o.0.to_str().unwrap()],
            )
        })
        .collect();
    let mut victim = start(
        CHILD,
        "queue.mpmc-forever",
        &[name.as_str(), "1", cname.as_str()],
    );
    let finite = 50_000u64;
    let mut other = start(
        CHILD,
        "queue.mpmc-produce",
        &[name.as_str(), "2", &finite.to_string()],
    );
    let _dog = Watchdog::watching(
        [victim.pid(), other.pid()]
            .into_iter()
            .chain(consumers.iter().map(|p| p.pid()))
            .collect::<Vec<u32>>(),
    );
    let bound = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::SeqCst) < 20_000 {
        assert!(Instant::now() < bound, "victim made no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    victim.kill().unwrap();
    assert_eq!(victim.join().unwrap().signal(), Some(9));
    let returned = counter.load(Ordering::SeqCst);
    let s = other.join().unwrap();
    assert!(s.success(), "producer: {s}");
    drop(guard);
    for c in &mut consumers {
        let s = c.join().unwrap();
        assert!(s.success(), "consumer: {s}");
    }
    let mut all = Vec::new();
    for o in &outs {
        let got = o.read();
        check_order(&got);
        all.extend(got);
    }
    all.sort_unstable();
    let (mut ones, twos): (Vec<u64>, Vec<u64>) = all.iter().partition(|&&v| v >> 32 == 1);
    assert_eq!(twos, (0..finite).map(|i| (2 << 32) | i).collect::<Vec<_>>());
    ones.iter_mut().for_each(|v| *v &= 0xffff_ffff);
    // Every push that returned was delivered, once; at most one more (pushed, not counted).
    assert!(ones.len() as u64 >= returned && ones.len() as u64 <= returned + 1);
    assert_eq!(ones, (0..ones.len() as u64).collect::<Vec<_>>());
    // The queue is still usable, and the dead producer's role slot can be taken over.
    let mut p = q.producer().unwrap();
    let mut c = q.consumer().unwrap();
    p.push(7).unwrap();
    assert_eq!(c.pop(), Ok(7));
}

/// A producer is SIGKILLed at the worst moment: after claiming a slot, before publishing it.
/// The consumer skips that one slot, delivers everything before and after it exactly once,
/// then reports Disconnected.
#[test]
fn producer_killed_between_claim_and_publish_is_skipped() {
    let name = SegmentName::unique();
    let cname = SegmentName::unique();
    let cseg = SharedCounter::create(&cname);
    let counter = cseg.get();
    let q = MpmcQueue::<u64>::builder(&name)
        .capacity(16)
        .create()
        .unwrap();
    let mut own = q.producer().unwrap();
    let out = OutFile::new();
    let mut consumer = start(
        CHILD,
        "queue.mpmc-consume",
        &[name.as_str(), out.0.to_str().unwrap()],
    );
    let n = 100u64;
    let mut victim = start(
        CHILD,
        "queue.mpmc-stall",
        &[name.as_str(), "1", &n.to_string(), cname.as_str()],
    );
    let _dog = Watchdog::watching([consumer.pid(), victim.pid()]);
    let bound = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::SeqCst) != n + 1 {
        assert!(Instant::now() < bound, "victim never stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Items behind the abandoned slot: the consumer cannot reach them yet.
    for i in 0..8u64 {
        own.push((2 << 32) | i).unwrap();
    }
    victim.kill().unwrap();
    assert_eq!(victim.join().unwrap().signal(), Some(9));
    for i in 8..50u64 {
        own.push((2 << 32) | i).unwrap();
    }
    drop(own);
    let s = consumer.join().unwrap();
    assert!(s.success(), "consumer: {s}");
    let got = out.read();
    check_order(&got);
    let mut all = got;
    all.sort_unstable();
    let want: Vec<u64> = (0..n)
        .map(|i| (1 << 32) | i)
        .chain((0..50).map(|i| (2 << 32) | i))
        .collect();
    assert_eq!(all, want);
    assert_eq!(q.skipped(), 1);
}
