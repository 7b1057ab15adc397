//! Seed 000's `Queue` and `Pipe` examples, across real processes.
//!
//! ```python
//! def f(q, n):
//!     q.put([42, n, 'hello'])
//!
//! if __name__ == '__main__':
//!     q = Queue()
//!     p_list = []
//!     for i in range(3):
//!         p = Process(target=f, args=(q, i))
//!         p_list.append(p)
//!         p.start()
//!     print(q.get()); print(q.get()); print(q.get())
//!     for i in p_list:
//!         i.join()
//!
//! def g(conn):
//!     conn.send([42, None, 'hello'])
//!     conn.close()
//!
//! if __name__ == '__main__':
//!     parent_conn, child_conn = Pipe()
//!     p = Process(target=g, args=(child_conn,))
//!     p.start()
//!     print(parent_conn.recv())   # prints "[42, None, 'hello']"
//!     p.join()
//! ```
//!
//! Run: `cargo run --example queue_pipe`. The parent creates an MPMC byte queue and a pipe by
//! name; the children (this same binary, started in the roles `f` and `g`) receive the names
//! typed (`Shared<ByteQueue>`, `Shared<PipeEnd>`) and open them.
//! Python pickles `[42, n, 'hello']`; here the message is a small fixed encoding (an `i64`, an
//! optional `i64`, then the UTF-8 text), decoded and printed in Python's notation. A push is
//! complete when it returns: nothing is lost when a child exits right after it.

use shm_core::SegmentName;
use shm_process::{Role, Roles, Shared};
use shm_queue::bytes::{ByteQueue, Flavor};
use shm_queue::pipe::{Pipe, PipeEnd};
use std::error::Error;

/// `[42, n, 'hello']`: the encoding of a three-element list (`None` for a missing `n`).
fn encode(a: i64, n: Option<i64>, s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + s.len());
    out.extend_from_slice(&a.to_le_bytes());
    out.push(u8::from(n.is_some()));
    out.extend_from_slice(&n.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

/// Decodes [`encode`]'s bytes and shows them as Python prints the list.
fn show(bytes: &[u8]) -> String {
    let (Some(a), Some(&has), Some(n), Some(s)) = (
        bytes.get(..8),
        bytes.get(8),
        bytes.get(9..17),
        bytes.get(17..),
    ) else {
        return format!("<malformed message of {} bytes>", bytes.len());
    };
    let a = i64::from_le_bytes(a.try_into().unwrap_or_default());
    let n = i64::from_le_bytes(n.try_into().unwrap_or_default());
    let n = if has != 0 {
        n.to_string()
    } else {
        "None".into()
    };
    format!("[{a}, {n}, '{}']", String::from_utf8_lossy(s))
}

/// `f(q, n)`: the queue and the number to put.
const F: Role<(Shared<ByteQueue>, i64)> = Role::new("f");
/// `g(conn)`: the pipe, whose name opens its child end.
const G: Role<Shared<PipeEnd>> = Role::new("g");

/// The queue child: `f(q, n)`.
fn f((q, n): (Shared<ByteQueue>, i64)) -> Result<(), Box<dyn Error>> {
    let q = q.open()?;
    q.producer()?.push(encode(42, Some(n), "hello"))?;
    Ok(())
}

/// The pipe child: `g(conn)`; dropping the end is `conn.close()`.
fn g(conn: Shared<PipeEnd>) -> Result<(), Box<dyn Error>> {
    let conn = conn.open()?;
    conn.send_bytes(encode(42, None, "hello"))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(F, f).register(G, g).run();

    // Queue: three children put one list each; the parent gets three.
    let qname = SegmentName::unique();
    let q = ByteQueue::builder(&qname)
        .flavor(Flavor::Mpmc)
        .capacity(16)
        .max_message(256)
        .create()?;
    let rx = q.consumer()?;
    // As in Python, the parent could put too. Holding a producer role also matters: a pop on a
    // drained queue whose producers have *all* left reports `Disconnected`, and the first child
    // may exit before the next one has opened the queue.
    let _parent_can_put = q.producer()?;
    let mut p_list = Vec::new();
    for i in 0..3 {
        p_list.push(F.builder(&(Shared::new(&qname), i))?.start()?);
    }
    for _ in 0..3 {
        println!("{}", show(&rx.pop()?));
    }
    for p in &mut p_list {
        let status = p.join()?;
        if !status.success() {
            return Err(format!("child {} failed: {status:?}", p.pid()).into());
        }
    }

    // Pipe: the child sends one list and closes its end; the parent receives it.
    let pname = SegmentName::unique();
    let parent_conn = Pipe::builder(&pname)
        .duplex(true)
        .max_message(256)
        .capacity(4)
        .create()?;
    let mut p = G.builder(&Shared::new(&pname))?.start()?;
    println!("{}", show(&parent_conn.recv_bytes()?)); // [42, None, 'hello']
    let status = p.join()?;
    if !status.success() {
        return Err(format!("child {} failed: {status:?}", p.pid()).into());
    }
    Ok(())
}
