//! Queue rows: `u64` round trips between two processes (busy-polling and blocking) and
//! one-way `u64` throughput.

use super::{arg, case, exit, finish, num, python, seg_name, Case, Group, Kind, Miss, Who, TWO};
use crate::error::{BoxError, Failure};
use crate::harness::{self, child_args, spin_until, Cfg, Child, Placement, Words};
use crossbeam_queue::ArrayQueue;
use shm_core::sync::{futex_wait, futex_wake, Deadline};
use shm_core::{SegmentName, WaitStrategy};
use shm_process::Roles;
use shm_queue::pipe::Pipe;
use shm_queue::{MpmcQueue, PopError, SpscQueue, TryPopError};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Ring capacity of every queue row.
const CAP: usize = 4096;
/// How long a side waits for its peer before calling the cell failed.
const PATIENCE: Duration = Duration::from_secs(10);
/// Messages per throughput batch (full mode).
const TP_BATCH: u64 = 200_000;

const RT_BUSY: &str = "queue-rt-busy";
const RT_BLOCK: &str = "queue-rt-block";
const TP: &str = "queue-tp";

/// The queue tables.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            key: RT_BUSY,
            area: "queue",
            title: "Round trip of a u64 between two processes, busy-polling",
            op: "one round trip (send, the peer echoes, receive)",
            kind: Kind::Latency,
            placements: TWO,
        },
        Group {
            key: RT_BLOCK,
            area: "queue",
            title: "Round trip of a u64 between two processes, blocking waits (both sides sleep in the kernel)",
            op: "one round trip",
            kind: Kind::Latency,
            placements: TWO,
        },
        Group {
            key: TP,
            area: "queue",
            title: "One-way throughput of u64 between two processes",
            op: "one message, over batches of 200k",
            kind: Kind::Throughput { bytes: None },
            placements: TWO,
        },
    ]
}

fn strategy(mode: &str) -> WaitStrategy {
    if mode == "sleep" {
        WaitStrategy::sleep()
    } else {
        WaitStrategy::busy_poll()
    }
}

/// The queue cases.
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        case(
            RT_BUSY,
            "shm-queue SPSC ring",
            Who::Ours,
            "busy-poll",
            |c, p| spsc_rt(c, p, "busy"),
        ),
        case(
            RT_BUSY,
            "shm-queue MPMC ring",
            Who::Ours,
            "busy-poll",
            |c, p| mpmc_rt(c, p, "busy"),
        ),
        case(RT_BUSY, "shm-queue Pipe", Who::Ours, "busy-poll", |c, p| {
            pipe_rt(c, p, "busy")
        }),
        case(
            RT_BUSY,
            "atomic ping-pong in shared memory",
            Who::Floor,
            "spin",
            atomic_rt,
        ),
        case(
            RT_BUSY,
            "Unix socket pair",
            Who::Peer,
            "non-blocking recv, spin",
            |c, p| unix_rt(c, p, true),
        ),
        case(RT_BUSY, "ipc-channel", Who::Peer, "try_recv, spin", ipc_rt),
        case(
            RT_BUSY,
            "shared_memory + raw_sync (Mutex + BusyEvent)",
            Who::Peer,
            "BusyEvent spin",
            rawsync_rt,
        ),
    ];
    #[cfg(feature = "iceoryx2")]
    v.push(case(
        RT_BUSY,
        "iceoryx2 publish-subscribe",
        Who::Peer,
        "receive, spin",
        crate::rows::iceoryx::rt,
    ));
    #[cfg(not(feature = "iceoryx2"))]
    v.push(case(
        RT_BUSY,
        "iceoryx2 publish-subscribe",
        Who::Peer,
        "receive, spin",
        |_, _| Err(Miss::Skipped("built without the iceoryx2 feature".into())),
    ));
    v.extend([
        python::line(
            RT_BUSY,
            "Python mp.Queue",
            "blocking (no busy-poll in mp)",
            "queue_rt",
            1,
        ),
        python::line(
            RT_BUSY,
            "Python mp.Pipe",
            "blocking (no busy-poll in mp)",
            "pipe_rt",
            1,
        ),
        // Blocking round trips.
        case(
            RT_BLOCK,
            "shm-queue SPSC ring",
            Who::Ours,
            "futex sleep",
            |c, p| spsc_rt(c, p, "sleep"),
        ),
        case(
            RT_BLOCK,
            "shm-queue Pipe",
            Who::Ours,
            "futex sleep",
            |c, p| pipe_rt(c, p, "sleep"),
        ),
        case(
            RT_BLOCK,
            "futex ping-pong in shared memory",
            Who::Floor,
            "futex sleep",
            futex_rt,
        ),
        case(
            RT_BLOCK,
            "Unix socket pair",
            Who::Peer,
            "blocking read",
            |c, p| unix_rt(c, p, false),
        ),
        // Throughput.
        case(
            TP,
            "shm-queue SPSC ring, push/pop",
            Who::Ours,
            "busy-poll",
            |c, p| spsc_tp(c, p, false),
        ),
        case(
            TP,
            "shm-queue SPSC ring, push_slice/pop_slice (256)",
            Who::Ours,
            "busy-poll",
            |c, p| spsc_tp(c, p, true),
        ),
        case(
            TP,
            "shm-queue MPMC ring, push/pop",
            Who::Ours,
            "busy-poll",
            |c, p| mpmc_tp(c, p, false),
        ),
        case(TP, "rtrb, two threads", Who::Ceiling, "spin", |c, p| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
            threads_tp(c, p, move |v| tx.push(v).is_ok(), move || rx.pop().ok())
        }),
        case(
            TP,
            "crossbeam ArrayQueue, two threads",
            Who::Ceiling,
            "spin",
            |c, p| {
                let q = Arc::new(ArrayQueue::<u64>::new(CAP));
                let q2 = Arc::clone(&q);
                threads_tp(c, p, move |v| q.push(v).is_ok(), move || q2.pop())
            },
        ),
        case(
            TP,
            "Unix socket, one write per message",
            Who::Peer,
            "blocking",
            unix_tp,
        ),
        python::line(TP, "Python mp.Queue", "blocking", "queue_tp", 10_000),
    ]);
    v
}

/// The queue rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r.role("q-spsc-echo", |a| exit(spsc_echo(child_args(a))))
        .role("q-mpmc-echo", |a| exit(mpmc_echo(child_args(a))))
        .role("q-pipe-echo", |a| exit(pipe_echo(child_args(a))))
        .role("q-atomic-pong", |a| exit(atomic_pong(child_args(a))))
        .role("q-futex-pong", |a| exit(futex_pong(child_args(a))))
        .role("q-unix-echo", |a| exit(unix_echo(child_args(a))))
        .role("q-ipc-echo", |a| exit(ipc_echo(child_args(a))))
        .role("q-rawsync-echo", |a| exit(rawsync_echo(child_args(a))))
        .role("q-spsc-sink", |a| exit(spsc_sink(child_args(a))))
        .role("q-mpmc-sink", |a| exit(mpmc_sink(child_args(a))))
        .role("q-unix-sink", |a| exit(unix_sink(child_args(a))))
}

// ---- round trips: our queues -------------------------------------------------------------

/// The round trip through two rings of one kind (`SpscQueue` or `MpmcQueue`, which share
/// their method names) and its echo child.
macro_rules! ring_round_trip {
    ($Queue:ident, $rt:ident, $echo:ident, $role:literal) => {
        fn $rt(cfg: &Cfg, p: Placement, mode: &str) -> Result<Vec<f64>, Miss> {
            harness::pin_to(p.parent_cpu());
            let (n1, n2) = (SegmentName::unique(), SegmentName::unique());
            let mk = |n: &SegmentName| {
                $Queue::<u64>::builder(n)
                    .capacity(CAP)
                    .create()
                    .map_err(|e| format!("create: {e}"))
            };
            let (ping, pong) = (mk(&n1)?, mk(&n2)?);
            let mut tx = ping.producer().map_err(Miss::failed)?;
            let mut rx = pong.consumer().map_err(Miss::failed)?;
            tx.set_wait_strategy(strategy(mode));
            rx.set_wait_strategy(strategy(mode));
            let child = Child::start(
                $role,
                p.child_cpu(),
                &[mode.into(), n1.as_str().into(), n2.as_str().into()],
            )?;
            let mut i = 0u64;
            let r = harness::per_op(cfg, || {
                i += 1;
                tx.push_timeout(i, PATIENCE)
                    .map_err(|e| format!("push: {e}"))?;
                match rx.pop_timeout(PATIENCE) {
                    Ok(v) if v == i => Ok(()),
                    Ok(v) => Err(format!("echo returned {v}, sent {i}")),
                    Err(e) => Err(format!("pop: {e}")),
                }
            });
            drop(tx);
            finish(child, r)
        }

        fn $echo(a: &[String]) -> Result<(), BoxError> {
            let ping = $Queue::<u64>::builder(&seg_name(arg(a, 1)?)?).open()?;
            let pong = $Queue::<u64>::builder(&seg_name(arg(a, 2)?)?).open()?;
            let mut rx = ping.consumer()?;
            let mut tx = pong.producer()?;
            rx.set_wait_strategy(strategy(arg(a, 0)?));
            tx.set_wait_strategy(strategy(arg(a, 0)?));
            while let Ok(v) = rx.pop() {
                tx.push(v).map_err(|e| format!("echo push: {e}"))?;
            }
            Ok(())
        }
    };
}

ring_round_trip!(SpscQueue, spsc_rt, spsc_echo, "q-spsc-echo");
ring_round_trip!(MpmcQueue, mpmc_rt, mpmc_echo, "q-mpmc-echo");

fn pipe_rt(cfg: &Cfg, p: Placement, mode: &str) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let n = SegmentName::unique();
    let mut end = Pipe::builder(&n)
        .duplex(true)
        .max_message(64)
        .capacity(64)
        .create()
        .map_err(|e| format!("create pipe: {e}"))?;
    end.set_wait_strategy(strategy(mode));
    let child = Child::start(
        "q-pipe-echo",
        p.child_cpu(),
        &[mode.into(), n.as_str().into()],
    )?;
    let mut i = 0u64;
    let mut buf = [0u8; 64];
    let r = harness::per_op(cfg, || {
        i += 1;
        end.send_bytes_timeout(i.to_le_bytes(), PATIENCE)
            .map_err(|e| format!("send: {e}"))?;
        let n = end
            .recv_into_timeout(&mut buf, PATIENCE)
            .map_err(|e| format!("recv: {e}"))?;
        if n == 8 && buf[..8] == i.to_le_bytes() {
            Ok(())
        } else {
            Err(format!("echo returned {n} bytes that are not {i}"))
        }
    });
    drop(end);
    finish(child, r)
}

fn pipe_echo(a: &[String]) -> Result<(), BoxError> {
    let mut end = Pipe::builder(&seg_name(arg(a, 1)?)?).open()?;
    end.set_wait_strategy(strategy(arg(a, 0)?));
    let mut buf = [0u8; 64];
    while let Ok(n) = end.recv_into(&mut buf) {
        end.send_bytes(&buf[..n])
            .map_err(|e| format!("echo send: {e}"))?;
    }
    Ok(())
}

// ---- round trips: floors -----------------------------------------------------------------

/// Value of the shared word that tells a pong child to stop.
const STOP: u64 = u64::MAX;

fn atomic_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let a = w.word(0);
    let child = Child::start("q-atomic-pong", p.child_cpu(), &[w.name()])?;
    let mut v = 0u64;
    let r = harness::per_op(cfg, || {
        a.store(v + 1, Ordering::Release);
        if !spin_until(PATIENCE, || a.load(Ordering::Acquire) == v + 2) {
            return Err("pong child did not answer".to_string());
        }
        v += 2;
        Ok(())
    });
    a.store(STOP, Ordering::Release);
    finish(child, r)
}

fn atomic_pong(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 0)?)?;
    let x = w.word(0);
    loop {
        // Spin (yielding now and then) until a ping or the stop value arrives.
        let mut v = 0;
        let ready = || {
            v = x.load(Ordering::Acquire);
            v == STOP || v % 2 == 1
        };
        if !spin_until(PATIENCE, ready) {
            continue;
        }
        if v == STOP {
            return Ok(());
        }
        x.store(v + 1, Ordering::Release);
    }
}

/// Futex word value that tells the pong child to stop.
const FSTOP: u32 = u32::MAX;

fn futex_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let w = Words::create()?;
    let x = w.word32(0);
    let child = Child::start("q-futex-pong", p.child_cpu(), &[w.name()])?;
    let mut v = 0u32;
    let r = harness::per_op(cfg, || {
        // Odd values are the parent's pings, the next even value the child's pong; the word
        // wraps below FSTOP.
        let ping = if v.wrapping_add(2) >= FSTOP - 1 {
            1
        } else {
            v + 1
        };
        x.store(ping, Ordering::Release);
        futex_wake(x, 1);
        let deadline = Deadline::after(PATIENCE);
        loop {
            let now = x.load(Ordering::Acquire);
            if now == ping + 1 {
                v = now;
                return Ok(());
            }
            if deadline.has_passed() {
                return Err("futex pong child did not answer".to_string());
            }
            futex_wait(x, now, deadline);
        }
    });
    x.store(FSTOP, Ordering::Release);
    futex_wake(x, 1);
    finish(child, r)
}

fn futex_pong(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 0)?)?;
    let x = w.word32(0);
    loop {
        let v = x.load(Ordering::Acquire);
        if v == FSTOP {
            return Ok(());
        }
        if v % 2 == 1 {
            x.store(v + 1, Ordering::Release);
            futex_wake(x, 1);
        } else {
            futex_wait(x, v, Deadline::after(Duration::from_secs(30)));
        }
    }
}

// ---- round trips: peers ------------------------------------------------------------------

/// A listening Unix socket at a fresh temporary path, removed on drop.
pub struct SockPath {
    /// The path.
    pub path: std::path::PathBuf,
    /// The listener.
    pub listener: UnixListener,
}

impl SockPath {
    /// Binds a fresh path.
    pub fn bind() -> Result<SockPath, BoxError> {
        let path = std::env::temp_dir().join(format!(
            "shm-bench-{}-{}.sock",
            std::process::id(),
            SegmentName::unique().as_str().trim_start_matches('/')
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| format!("bind {path:?}: {e}"))?;
        Ok(SockPath { path, listener })
    }

    /// Accepts the child's connection (waiting at most [`PATIENCE`]).
    pub fn accept(&self) -> Result<UnixStream, BoxError> {
        self.listener.set_nonblocking(true)?;
        let deadline = Deadline::after(PATIENCE);
        loop {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false)?;
                    s.set_read_timeout(Some(PATIENCE))?;
                    return Ok(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if deadline.has_passed() {
                        return Err("the child did not connect".into());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(format!("accept: {e}").into()),
            }
        }
    }

    /// The path as a child argument.
    pub fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

impl Drop for SockPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl std::fmt::Debug for SockPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockPath")
            .field("path", &self.path)
            .finish()
    }
}

/// Reads exactly `buf.len()` bytes; with `spin`, from a non-blocking socket by spinning.
pub fn read_full(s: &mut UnixStream, buf: &mut [u8], spin: bool) -> Result<(), BoxError> {
    if !spin {
        return Ok(s.read_exact(buf).map_err(|e| Failure::new("read", e))?);
    }
    let mut got = 0;
    let deadline = Deadline::after(PATIENCE);
    let mut n = 0u32;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Err("peer closed the socket".into()),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                n = n.wrapping_add(1);
                if n.is_multiple_of(4096) && deadline.has_passed() {
                    return Err("read timed out".into());
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(format!("read: {e}").into()),
        }
    }
    Ok(())
}

/// Writes all of `buf` (spinning on a non-blocking socket's WouldBlock).
pub fn write_full(s: &mut UnixStream, buf: &[u8]) -> Result<(), BoxError> {
    let mut put = 0;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(0) => return Err("peer closed the socket".into()),
            Ok(k) => put += k,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(format!("write: {e}").into()),
        }
    }
    Ok(())
}

fn unix_rt(cfg: &Cfg, p: Placement, spin: bool) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let sock = SockPath::bind()?;
    let mode = if spin { "busy" } else { "block" };
    let child = Child::start("q-unix-echo", p.child_cpu(), &[mode.into(), sock.arg()])?;
    let mut s = sock.accept()?;
    s.set_nonblocking(spin).map_err(Miss::failed)?;
    let mut i = 0u64;
    let mut buf = [0u8; 8];
    let r = harness::per_op(cfg, || -> Result<(), BoxError> {
        i += 1;
        write_full(&mut s, &i.to_le_bytes())?;
        read_full(&mut s, &mut buf, spin)?;
        if u64::from_le_bytes(buf) == i {
            Ok(())
        } else {
            Err("echo returned another value".into())
        }
    });
    drop(s);
    finish(child, r)
}

fn unix_echo(a: &[String]) -> Result<(), BoxError> {
    let spin = arg(a, 0)? == "busy";
    let mut s = UnixStream::connect(arg(a, 1)?).map_err(|e| format!("connect: {e}"))?;
    s.set_nonblocking(spin)?;
    let mut buf = [0u8; 8];
    loop {
        if read_full(&mut s, &mut buf, spin).is_err() {
            return Ok(()); // the parent closed the socket: done
        }
        write_full(&mut s, &buf)?;
    }
}

type IpcPair = (
    ipc_channel::ipc::IpcSender<u64>,
    ipc_channel::ipc::IpcReceiver<u64>,
);

fn ipc_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    use ipc_channel::ipc::{IpcOneShotServer, TryRecvError};
    harness::pin_to(p.parent_cpu());
    let (server, server_name) =
        IpcOneShotServer::<IpcPair>::new().map_err(|e| format!("ipc server: {e}"))?;
    let child = Child::start("q-ipc-echo", p.child_cpu(), &[server_name])?;
    let (_, (tx, rx)) = server.accept().map_err(|e| format!("ipc accept: {e}"))?;
    let mut i = 0u64;
    let r = harness::per_op(cfg, || {
        i += 1;
        tx.send(i).map_err(|e| format!("ipc send: {e}"))?;
        let deadline = Deadline::after(PATIENCE);
        loop {
            match rx.try_recv() {
                Ok(v) if v == i => return Ok(()),
                Ok(v) => return Err(format!("echo returned {v}, sent {i}")),
                Err(TryRecvError::Empty) => {
                    if deadline.has_passed() {
                        return Err("ipc-channel echo timed out".to_string());
                    }
                    std::hint::spin_loop();
                }
                Err(e) => return Err(format!("ipc recv: {e:?}")),
            }
        }
    });
    drop(tx);
    finish(child, r)
}

fn ipc_echo(a: &[String]) -> Result<(), BoxError> {
    use ipc_channel::ipc::{self, IpcSender, TryRecvError};
    let boot = IpcSender::<IpcPair>::connect(arg(a, 0)?.to_owned())
        .map_err(|e| format!("ipc connect: {e}"))?;
    let (to_child, from_parent) = ipc::channel::<u64>()?;
    let (to_parent, from_child) = ipc::channel::<u64>()?;
    boot.send((to_child, from_child))
        .map_err(|e| format!("ipc bootstrap: {e}"))?;
    loop {
        match from_parent.try_recv() {
            Ok(v) => to_parent.send(v).map_err(|e| format!("ipc send: {e}"))?,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
            Err(_) => return Ok(()), // the parent hung up
        }
    }
}

/// Offsets in the shared_memory segment of the raw_sync row.
const RS_DATA: usize = 64;
const RS_EV_PING: usize = 128;
const RS_EV_PONG: usize = 256;
const RS_STOP: u64 = u64::MAX;

/// raw_sync's objects in a `shared_memory` mapping.
struct RawSync {
    shmem: shared_memory::Shmem,
    lock: Box<dyn raw_sync::locks::LockImpl>,
    ping: Box<dyn raw_sync::events::EventImpl>,
    pong: Box<dyn raw_sync::events::EventImpl>,
}

/// raw_sync's errors are `Box<dyn Error>` without `Send + Sync`, so `?` cannot move them into
/// a [`BoxError`]: only their message can cross (the one error here that is not kept as is).
fn rs_err(e: Box<dyn std::error::Error>) -> BoxError {
    e.to_string().into()
}

impl RawSync {
    fn create() -> Result<RawSync, BoxError> {
        use raw_sync::events::{BusyEvent, EventInit};
        use raw_sync::locks::{LockInit, Mutex};
        let shmem = shared_memory::ShmemConf::new()
            .size(4096)
            .create()
            .map_err(|e| format!("shared_memory create: {e}"))?;
        let base = shmem.as_ptr();
        // SAFETY: the mapping is 4096 bytes, private to this row until the child opens it;
        // the mutex lives at 0..64, its data word at 64, the two events at 128 and 256, all
        // inside the mapping and not overlapping.
        let (lock, ping, pong) = unsafe {
            let (lock, _) = Mutex::new(base, base.add(RS_DATA)).map_err(rs_err)?;
            let (ping, _) = BusyEvent::new(base.add(RS_EV_PING), true).map_err(rs_err)?;
            let (pong, _) = BusyEvent::new(base.add(RS_EV_PONG), true).map_err(rs_err)?;
            (lock, ping, pong)
        };
        Ok(RawSync {
            shmem,
            lock,
            ping,
            pong,
        })
    }

    fn open(os_id: &str) -> Result<RawSync, BoxError> {
        use raw_sync::events::{BusyEvent, EventInit};
        use raw_sync::locks::{LockInit, Mutex};
        let shmem = shared_memory::ShmemConf::new()
            .os_id(os_id)
            .open()
            .map_err(|e| format!("shared_memory open: {e}"))?;
        if shmem.len() < 4096 {
            return Err("shared_memory segment too short".into());
        }
        let base = shmem.as_ptr();
        // SAFETY: the creator initialized these objects at these offsets before starting us.
        let (lock, ping, pong) = unsafe {
            let (lock, _) = Mutex::from_existing(base, base.add(RS_DATA)).map_err(rs_err)?;
            let (ping, _) = BusyEvent::from_existing(base.add(RS_EV_PING)).map_err(rs_err)?;
            let (pong, _) = BusyEvent::from_existing(base.add(RS_EV_PONG)).map_err(rs_err)?;
            (lock, ping, pong)
        };
        Ok(RawSync {
            shmem,
            lock,
            ping,
            pong,
        })
    }

    fn put(&self, v: u64) -> Result<(), BoxError> {
        let g = self.lock.lock().map_err(rs_err)?;
        // SAFETY: the guard's data pointer is the 8-aligned data word at RS_DATA, accessed
        // only under the mutex.
        unsafe { (*g).cast::<u64>().write(v) };
        drop(g);
        Ok(())
    }

    fn get(&self) -> Result<u64, BoxError> {
        let g = self.lock.lock().map_err(rs_err)?;
        // SAFETY: as in `put`.
        let v = unsafe { (*g).cast::<u64>().read() };
        drop(g);
        Ok(v)
    }
}

fn rawsync_rt(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    use raw_sync::{events::EventState, Timeout};
    harness::pin_to(p.parent_cpu());
    let rs = RawSync::create()?;
    let child = Child::start(
        "q-rawsync-echo",
        p.child_cpu(),
        &[rs.shmem.get_os_id().to_owned()],
    )?;
    let mut i = 0u64;
    let r = harness::per_op(cfg, || -> Result<(), BoxError> {
        i += 1;
        rs.put(i)?;
        rs.ping.set(EventState::Signaled).map_err(rs_err)?;
        rs.pong
            .wait(Timeout::Val(PATIENCE))
            .map_err(|e| format!("raw_sync wait: {e}"))?;
        match rs.get()? {
            v if v == i + 1 => Ok(()),
            v => Err(format!("echo returned {v}, expected {}", i + 1).into()),
        }
    });
    let _ = rs.put(RS_STOP);
    let _ = rs.ping.set(EventState::Signaled);
    finish(child, r)
}

fn rawsync_echo(a: &[String]) -> Result<(), BoxError> {
    use raw_sync::{events::EventState, Timeout};
    let rs = RawSync::open(arg(a, 0)?)?;
    loop {
        rs.ping
            .wait(Timeout::Val(Duration::from_secs(30)))
            .map_err(|e| format!("raw_sync wait: {e}"))?;
        let v = rs.get()?;
        if v == RS_STOP {
            return Ok(());
        }
        rs.put(v + 1)?;
        rs.pong.set(EventState::Signaled).map_err(rs_err)?;
    }
}

// ---- throughput --------------------------------------------------------------------------

/// Word 0 of the ack segment: messages the sink has received so far.
const ACK: usize = 0;

/// Waits until the sink has acknowledged `target` messages.
fn wait_ack(w: &Words, target: u64) -> Result<(), BoxError> {
    if spin_until(PATIENCE, || w.word(ACK).load(Ordering::Acquire) >= target) {
        Ok(())
    } else {
        Err(format!(
            "the sink acknowledged {} of {target} messages",
            w.word(ACK).load(Ordering::Acquire)
        )
        .into())
    }
}

/// One-way throughput through one ring of a kind (single items or slices of 256) and its
/// sink child.
macro_rules! ring_throughput {
    ($Queue:ident, $tp:ident, $sink:ident, $sink_role:literal) => {
        fn $tp(cfg: &Cfg, p: Placement, slices: bool) -> Result<Vec<f64>, Miss> {
            harness::pin_to(p.parent_cpu());
            let n = SegmentName::unique();
            let q = $Queue::<u64>::builder(&n)
                .capacity(CAP)
                .create()
                .map_err(|e| format!("create: {e}"))?;
            let w = Words::create()?;
            let mut tx = q.producer().map_err(Miss::failed)?;
            tx.set_wait_strategy(WaitStrategy::busy_poll());
            let mode = if slices { "slice" } else { "single" };
            let child = Child::start(
                $sink_role,
                p.child_cpu(),
                &[n.as_str().into(), w.name(), mode.into()],
            )?;
            let mut sent = 0u64;
            let chunk: Vec<u64> = (0..256).collect();
            let r = harness::throughput(cfg, cfg.batch(TP_BATCH), |m| -> Result<(), BoxError> {
                if slices {
                    let mut left = m as usize;
                    let deadline = Deadline::after(PATIENCE);
                    let mut idle = 0u32;
                    while left > 0 {
                        let k = left.min(chunk.len());
                        let pushed = tx.push_slice(&chunk[..k]);
                        if pushed == 0 {
                            idle = idle.wrapping_add(1);
                            if idle.is_multiple_of(256) {
                                if deadline.has_passed() {
                                    return Err("the sink stopped popping".into());
                                }
                                std::thread::yield_now();
                            } else {
                                std::hint::spin_loop();
                            }
                        }
                        left -= pushed;
                    }
                } else {
                    for i in 0..m {
                        tx.push_timeout(i, PATIENCE)
                            .map_err(|e| format!("push: {e}"))?;
                    }
                }
                sent += m;
                wait_ack(&w, sent)
            });
            drop(tx);
            finish(child, r)
        }

        fn $sink(a: &[String]) -> Result<(), BoxError> {
            let q = $Queue::<u64>::builder(&seg_name(arg(a, 0)?)?).open()?;
            let w = Words::open(arg(a, 1)?)?;
            let slices = arg(a, 2)? == "slice";
            let mut rx = q.consumer()?;
            rx.set_wait_strategy(WaitStrategy::busy_poll());
            let mut got = 0u64;
            let mut buf = [0u64; 256];
            loop {
                if slices {
                    let k = rx.pop_slice(&mut buf);
                    if k > 0 {
                        got += k as u64;
                        w.word(ACK).store(got, Ordering::Release);
                        continue;
                    }
                }
                let step = drain_one(
                    &w,
                    &mut got,
                    |rx: &mut _| rx.try_pop(),
                    |rx| rx.pop(),
                    &mut rx,
                );
                if step.is_none() {
                    return Ok(());
                }
            }
        }
    };
}

ring_throughput!(SpscQueue, spsc_tp, spsc_sink, "q-spsc-sink");
ring_throughput!(MpmcQueue, mpmc_tp, mpmc_sink, "q-mpmc-sink");

/// One item of a sink: takes it without waiting if there is one; otherwise acknowledges what
/// it has so far and blocks. Acknowledges every 256 items too, as the thread peers' consumers
/// do; no look at the producer's index per item. `None` once the producers are gone.
fn drain_one<R>(
    w: &Words,
    got: &mut u64,
    try_pop: impl FnOnce(&mut R) -> Result<u64, TryPopError>,
    pop: impl FnOnce(&mut R) -> Result<u64, PopError>,
    rx: &mut R,
) -> Option<()> {
    let v = match try_pop(rx) {
        Ok(v) => v,
        Err(TryPopError::Empty) => {
            w.word(ACK).store(*got, Ordering::Release);
            pop(rx).ok()?
        }
        Err(_) => return None,
    };
    std::hint::black_box(v);
    *got += 1;
    if got.is_multiple_of(256) {
        w.word(ACK).store(*got, Ordering::Release);
    }
    Some(())
}

/// One-way throughput between this thread and a consumer thread, pinned per the placement.
fn threads_tp(
    cfg: &Cfg,
    p: Placement,
    mut push: impl FnMut(u64) -> bool,
    mut pop: impl FnMut() -> Option<u64> + Send + 'static,
) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (done2, stop2) = (Arc::clone(&done), Arc::clone(&stop));
    let cpu = p.child_cpu();
    let t = std::thread::spawn(move || {
        harness::pin_to(cpu);
        let mut n = 0u64;
        let mut idle = 0u32;
        while !stop2.load(Ordering::Relaxed) {
            match pop() {
                Some(v) => {
                    std::hint::black_box(v);
                    n += 1;
                    idle = 0;
                    if n.is_multiple_of(256) {
                        done2.store(n, Ordering::Release);
                    }
                }
                None => {
                    done2.store(n, Ordering::Release);
                    idle = idle.wrapping_add(1);
                    if idle.is_multiple_of(1024) {
                        std::thread::yield_now();
                    }
                    std::hint::spin_loop();
                }
            }
        }
    });
    let mut sent = 0u64;
    let r = harness::throughput(cfg, cfg.batch(TP_BATCH), |m| {
        for i in 0..m {
            let mut tries = 0u32;
            while !push(i) {
                tries = tries.wrapping_add(1);
                if tries.is_multiple_of(1024) {
                    std::thread::yield_now();
                }
                std::hint::spin_loop();
            }
        }
        sent += m;
        if spin_until(PATIENCE, || done.load(Ordering::Acquire) >= sent) {
            Ok(())
        } else {
            Err("consumer thread stalled".to_string())
        }
    });
    stop.store(true, Ordering::Relaxed);
    t.join().map_err(|_| "consumer thread panicked")?;
    r.map_err(Miss::Failed)
}

fn unix_tp(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    harness::pin_to(p.parent_cpu());
    let sock = SockPath::bind()?;
    let m = cfg.batch(TP_BATCH);
    let child = Child::start(
        "q-unix-sink",
        p.child_cpu(),
        &[sock.arg(), m.to_string(), "8".into()],
    )?;
    let mut s = sock.accept()?;
    let r = harness::throughput(cfg, m, |m| {
        for i in 0..m {
            write_full(&mut s, &i.to_le_bytes())?;
        }
        let mut ack = [0u8; 1];
        read_full(&mut s, &mut ack, false)
    });
    drop(s);
    finish(child, r)
}

/// Reads `m` messages of `size` bytes at a time (as much as each read returns), then writes a
/// one-byte ack; until the parent closes the socket.
fn unix_sink(a: &[String]) -> Result<(), BoxError> {
    let mut s = UnixStream::connect(arg(a, 0)?).map_err(|e| format!("connect: {e}"))?;
    let m = num(a, 1)?;
    let size = num(a, 2)?;
    let batch_bytes = m * size;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(k) => {
                got += k as u64;
                if got >= batch_bytes {
                    got -= batch_bytes;
                    write_full(&mut s, &[1])?;
                }
            }
        }
    }
}
