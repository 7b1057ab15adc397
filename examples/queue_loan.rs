//! Zero copy across processes: frames of 1 MiB written once, straight into shared memory, and
//! read where they lie; and a ring of `u32`s filled and drained in chunks.
//!
//! Run: `cargo run --example queue_loan`. The parent creates an SPSC byte queue of four 1 MiB
//! slots and an SPSC queue of `u32`; a child (this same binary, in the role `camera`) opens
//! both by name. For each frame it borrows a slot (`loan`), renders the frame into it and
//! commits it: the bytes are written once. The parent reads each frame in place (`read`),
//! checks it, and drops it, which hands the slot back. Then the child sends 10 000 numbers
//! through `write_chunk` (many slots filled, one index store to publish them) and the parent
//! takes them with `read_chunk`.
//!
//! Python's nearest equivalent is `multiprocessing.shared_memory` plus a hand-made protocol;
//! `Queue.put` of a 1 MiB `bytes` pickles and copies it several times.

use shm_core::SegmentName;
use shm_process::{Role, Roles, Shared};
use shm_queue::bytes::{ByteQueue, Flavor};
use shm_queue::{ChunkError, SpscQueue};
use std::error::Error;

const FRAME: usize = 1 << 20;
const FRAMES: u32 = 32;
const NUMBERS: u32 = 10_000;

/// The child: the frame queue and the number queue.
const CAMERA: Role<(Shared<ByteQueue>, Shared<SpscQueue<u32>>)> = Role::new("camera");

/// Frame `i`'s byte at `j`: cheap to render, easy to check.
fn pixel(i: u32, j: usize) -> u8 {
    (i as usize).wrapping_mul(31).wrapping_add(j / 4096) as u8
}

fn camera(
    (frames, numbers): (Shared<ByteQueue>, Shared<SpscQueue<u32>>),
) -> Result<(), Box<dyn Error>> {
    let frames = frames.open()?;
    let mut tx = frames.producer()?;
    for i in 0..FRAMES {
        // Waits while all four slots are lent to the reader or queued.
        let mut loan = tx.loan(FRAME)?;
        for (j, b) in loan.iter_mut().enumerate() {
            *b = pixel(i, j);
        }
        loan.commit();
    }
    let numbers = numbers.open()?;
    let mut out = numbers.producer()?;
    let mut next = 0;
    while next < NUMBERS {
        let want = (NUMBERS - next).min(256) as usize;
        let mut chunk = match out.write_chunk(want) {
            Ok(c) => c,
            // Fewer slots free: take what there is (or wait a little for the reader).
            Err(ChunkError::TooFew { available: 0 }) => {
                std::thread::yield_now();
                continue;
            }
            Err(ChunkError::TooFew { available }) => out.write_chunk(available)?,
            Err(e) => return Err(e.into()),
        };
        let (a, b) = chunk.as_mut_slices();
        for v in a.iter_mut().chain(b.iter_mut()) {
            *v = next;
            next += 1;
        }
        chunk.commit_all();
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().register(CAMERA, camera).run();

    let fname = SegmentName::unique();
    let frames = ByteQueue::builder(&fname)
        .flavor(Flavor::Spsc)
        .capacity(4)
        .max_message(FRAME)
        .create()?;
    let nname = SegmentName::unique();
    let numbers = SpscQueue::<u32>::builder(&nname).capacity(1024).create()?;
    let mut rx = frames.consumer()?;
    let mut nrx = numbers.consumer()?;
    let mut child = CAMERA
        .builder(&(Shared::new(&fname), Shared::new(&nname)))?
        .start()?;

    for i in 0..FRAMES {
        let frame = rx.read()?; // in place: no copy out of shared memory
        if frame.len() != FRAME || frame.iter().enumerate().any(|(j, &b)| b != pixel(i, j)) {
            return Err(format!("frame {i} arrived damaged").into());
        }
    } // each frame's drop handed its slot back
    println!("{FRAMES} frames of {FRAME} bytes, each written once and read in place");

    let (mut got, mut sum) = (0u32, 0u64);
    while got < NUMBERS {
        let ready = nrx.slots();
        if ready == 0 {
            std::thread::yield_now();
            continue;
        }
        let chunk = nrx.read_chunk(ready)?;
        let (a, b) = chunk.as_slices();
        for &v in a.iter().chain(b) {
            if v != got {
                return Err(format!("number {got} arrived as {v}").into());
            }
            sum += u64::from(v);
            got += 1;
        }
        chunk.commit_all();
    }
    println!("{NUMBERS} numbers through chunks, in order; sum {sum}");

    let status = child.join()?;
    if !status.success() {
        return Err(format!("child {} failed: {status:?}", child.pid()).into());
    }
    Ok(())
}
