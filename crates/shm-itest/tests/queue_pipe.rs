//! Multi-process tests of `Pipe`: both directions across real processes, end of stream and
//! broken pipe when the peer drops or is SIGKILLed (never a hang), and exclusive ends.
//!
//! No test asserts a duration; a watchdog aborts the binary (and the daemon children) on a hang.
#![cfg(target_os = "linux")]

use shm_core::{ProcessId, Segment, SegmentName};
use shm_itest::{child, join_ok_within, wait_ready, Watchdog};
use shm_queue::pipe::{end_taken, End, Pipe, RecvError, RecvTimeoutError, SendError};
use shm_queue::RoleError;
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
const OUTCOME_BOUND: Duration = Duration::from_secs(20);

#[test]
fn duplex_echo_both_ways() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let end = Pipe::builder(&name)
        .duplex(true)
        .max_message(128)
        .capacity(4)
        .create()
        .unwrap();
    let mut p = child(CHILD, "queue.pipe-echo")
        .arg(name.as_str())
        .start()
        .unwrap();
    let mut buf = [0u8; 128];
    for i in 0..200u32 {
        let msg: Vec<u8> = (0..(i % 129)).map(|j| (i + j) as u8).collect();
        end.send_bytes_timeout(msg.clone(), OUTCOME_BOUND).unwrap();
        let n = end.recv_into_timeout(&mut buf, OUTCOME_BOUND).unwrap();
        let mut back = buf[..n].to_vec();
        back.reverse();
        assert_eq!(back, msg, "round trip {i}");
    }
    drop(end); // the echo child sees EOF and exits 0
    join_ok_within(&mut p, OUTCOME_BOUND);
}

#[test]
fn one_way_child_sends_then_eof() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let end = Pipe::builder(&name)
        .duplex(false)
        .max_message(32)
        .capacity(2)
        .create()
        .unwrap();
    assert!(!end.can_send());
    let mut p = child(CHILD, "queue.pipe-send")
        .args([name.as_str(), "50"])
        .start()
        .unwrap();
    for i in 0..50 {
        assert_eq!(
            end.recv_bytes_timeout(OUTCOME_BOUND).unwrap(),
            format!("msg-{i}").into_bytes()
        );
    }
    // The sender exited (dropping its end): poll says a recv won't block, and it is EOF.
    assert!(end.poll(Some(OUTCOME_BOUND)));
    assert_eq!(end.recv_bytes(), Err(RecvError::Disconnected));
    join_ok_within(&mut p, OUTCOME_BOUND);
}

#[test]
fn sigkilled_writer_gives_eof_to_blocked_reader() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let end = Pipe::builder(&name).create().unwrap();
    let mut p = child(CHILD, "queue.pipe-hold")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    // The peer is alive and holds its end: nothing to read yet.
    assert!(!end.poll(Some(Duration::from_millis(10))));
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        p.kill().unwrap();
        p.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped")
    });
    assert_eq!(end.recv_bytes(), Err(RecvError::Disconnected));
    assert!(!killer.join().unwrap().success());
}

#[test]
fn sigkilled_reader_gives_broken_pipe_to_writer() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let end = Pipe::builder(&name)
        .capacity(4)
        .max_message(16)
        .create()
        .unwrap();
    let mut p = child(CHILD, "queue.pipe-hold")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    p.kill().unwrap();
    p.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped");
    // Sends fill the pipe at most; then the dead reader is noticed: Disconnected (broken pipe), not a hang.
    let mut sent = 0;
    let err = loop {
        match end.send_bytes(b"data") {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(
            sent <= 100,
            "sends kept succeeding into a pipe whose reader is dead"
        );
    };
    assert!(matches!(err, SendError::Disconnected(m) if m == b"data"));
}

#[test]
fn creator_killed_opener_gets_eof_and_broken_pipe() {
    let _w = Watchdog::new();
    // The killed creator cannot unlink its name: the guard does, even if an assert fails.
    let guard = shm_itest::NameGuard::unique();
    let name = guard.name().clone();
    let mut p = child(CHILD, "queue.pipe-create-hold")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    let end = Pipe::builder(&name).open().unwrap();
    // Both ends are claimed: a second opener is refused with the end-taken `OpenError`,
    // which names the holder (this process).
    let err = Pipe::builder(&name).open().unwrap_err();
    assert_eq!(
        end_taken(&err),
        Some(RoleError::Busy {
            holder: ProcessId::current()
        }),
        "{err:?}"
    );
    p.kill().unwrap();
    p.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped");
    assert_eq!(end.recv_bytes(), Err(RecvError::Disconnected));
    let mut err = None;
    for _ in 0..100 {
        if let Err(e) = end.send_bytes(b"x") {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(SendError::Disconnected(_))), "{err:?}");
    drop(end);
    // The creator was killed: the name it left behind is still there until the guard drops.
    assert!(Segment::exists(&name));
}

#[test]
fn short_poll_and_timed_recv_see_a_killed_writer() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let end = Pipe::builder(&name).create().unwrap();
    let mut p = child(CHILD, "queue.pipe-hold")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    assert!(!end.poll(Some(Duration::ZERO)));
    assert_eq!(
        end.recv_bytes_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Timeout)
    );
    p.kill().unwrap();
    p.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped");
    // Shorter than any sleep slice, and still the dead writer is noticed: EOF, as Python's
    // poll() returns True for a closed peer.
    assert!(end.poll(Some(Duration::ZERO)));
    assert_eq!(
        end.recv_bytes_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

/// `open_or_create` across processes: the parent creates (and gets the receiving end of a
/// one-way pipe); a child whose `open_or_create` finds both ends held by live processes gets
/// the end-taken error; once the holder is SIGKILLed, the next child takes its end over and
/// sends; the parent reads everything, then end of stream.
#[test]
fn open_or_create_takes_the_due_end_and_a_killed_holders_end() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let end = Pipe::builder(&name)
        .duplex(false)
        .capacity(2)
        .max_message(32)
        .open_or_create()
        .unwrap();
    assert_eq!(end.end(), End::Creator);
    assert!(end.can_recv());
    let mut holder = child(CHILD, "queue.pipe-hold")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut holder);
    let mut refused = child(CHILD, "queue.pipe-oc-send")
        .args([name.as_str(), "2", "5"])
        .start()
        .unwrap();
    let status = shm_itest::join_within(&mut refused, OUTCOME_BOUND);
    assert_eq!(
        status.code(),
        Some(3),
        "expected the end-taken error: {status:?}"
    );
    holder.kill().unwrap();
    holder.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped");
    let mut sender = child(CHILD, "queue.pipe-oc-send")
        .args([name.as_str(), "2", "5"])
        .start()
        .unwrap();
    for i in 0..5 {
        assert_eq!(
            end.recv_bytes_timeout(OUTCOME_BOUND).unwrap(),
            format!("msg-{i}").into_bytes()
        );
    }
    assert_eq!(
        end.recv_bytes_timeout(OUTCOME_BOUND),
        Err(RecvTimeoutError::Disconnected)
    );
    join_ok_within(&mut sender, OUTCOME_BOUND);
}
