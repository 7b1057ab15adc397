//! Typed messages (feature `serde`): any `Serialize` / `Deserialize` value through the byte
//! queues, joinable queues and pipes, encoded with [postcard](https://docs.rs/postcard).
//!
//! On by default (feature `serde`, forwarded by the `shm-ipc` facade). The encoded value must
//! fit the queue's `max_message`; a value that does not is [`PushValueError::TooLarge`]. A
//! message that does not decode as the requested type (another type was sent, or garbage) is
//! [`PopValueError::Decode`] ([`RecvValueError::Decode`] on a pipe); the message is consumed
//! either way. Each error is one flat enum, `'static + Send + Sync`, so `?` works into
//! `Box<dyn Error + Send + Sync>` and `anyhow::Error`.
//!
//! # Examples
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use shm_queue::bytes::{ByteQueue, Flavor};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Job { id: u32, name: String, args: Vec<i64> }
//!
//! let q = ByteQueue::heap(Flavor::Spsc, 4, 128)?;
//! let (tx, rx) = (q.producer()?, q.consumer()?);
//! let job = Job { id: 7, name: "hello".into(), args: vec![42, -1] };
//! tx.push_value(&job)?;
//! assert_eq!(rx.pop_value::<Job>()?, job);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bytes::{AnyPushError, BytesConsumer, BytesProducer};
use crate::error::Fail;
use crate::joinable::{JoinableConsumer, JoinableProducer};
use crate::pipe::{PipeEnd, RecvError, SendError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Why a typed push (or `put`) failed: one flat enum, no nesting.
///
/// `push_value`: `Encode`, `TooLarge`, `Closed`, `Disconnected`, `Corrupt`;
/// `try_push_value` also `Full`.
#[derive(Debug)]
pub enum PushValueError {
    /// The value could not be encoded.
    Encode(postcard::Error),
    /// The encoded value is longer than the queue's maximum message.
    TooLarge {
        /// Bytes of the encoding.
        len: usize,
        /// The queue's maximum message length.
        max: usize,
    },
    /// The queue is full (non-blocking push).
    Full,
    /// The queue was closed.
    Closed,
    /// The queue is full and every consumer that ever attached has gone.
    Disconnected,
    /// The queue is poisoned (its shared state is corrupt).
    Corrupt,
}

impl fmt::Display for PushValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushValueError::Encode(e) => write!(f, "cannot encode the value: {e}"),
            PushValueError::TooLarge { len, max } => write!(
                f,
                "the value encodes to {len} bytes, over the queue's maximum of {max}"
            ),
            PushValueError::Full => f.write_str("push to a full queue"),
            PushValueError::Closed => f.write_str("push to a closed queue"),
            PushValueError::Disconnected => {
                f.write_str("push to a full queue whose consumers are all gone")
            }
            PushValueError::Corrupt => {
                f.write_str("push to a poisoned queue: its shared state is corrupt")
            }
        }
    }
}

impl Error for PushValueError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PushValueError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

impl PushValueError {
    fn of(e: AnyPushError<Vec<u8>>) -> PushValueError {
        match e {
            AnyPushError::TooLarge { msg, max } => PushValueError::TooLarge {
                len: msg.len(),
                max,
            },
            AnyPushError::Full(_) => PushValueError::Full,
            AnyPushError::Closed(_) => PushValueError::Closed,
            // A blocking push without a timeout never times out.
            AnyPushError::Timeout(_) | AnyPushError::Disconnected(_) => {
                PushValueError::Disconnected
            }
            AnyPushError::Corrupt(_) => PushValueError::Corrupt,
        }
    }
}

/// Why a typed pop (or `get`) returned no value: one flat enum, no nesting.
///
/// `pop_value`: `Closed`, `Disconnected`, `Corrupt`, `Decode`;
/// `try_pop_value` also `Empty`; `pop_value_timeout` also `Timeout`.
#[derive(Debug)]
pub enum PopValueError {
    /// The queue is empty (non-blocking pop).
    Empty,
    /// The queue stayed empty until the timeout.
    Timeout,
    /// The queue was closed and is drained.
    Closed,
    /// The queue is drained and every producer that ever attached has gone.
    Disconnected,
    /// The queue is poisoned (its shared state is corrupt).
    Corrupt,
    /// The message did not decode as the requested type (it was consumed).
    Decode(postcard::Error),
}

impl fmt::Display for PopValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopValueError::Empty => f.write_str("pop from an empty queue"),
            PopValueError::Timeout => f.write_str("pop timed out: the queue stayed empty"),
            PopValueError::Closed => f.write_str("pop from a closed, drained queue"),
            PopValueError::Disconnected => {
                f.write_str("pop from a drained queue whose producers are all gone")
            }
            PopValueError::Corrupt => {
                f.write_str("pop from a poisoned queue: its shared state is corrupt")
            }
            PopValueError::Decode(e) => write!(f, "cannot decode the message: {e}"),
        }
    }
}

impl Error for PopValueError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PopValueError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl PopValueError {
    fn of(f: Fail) -> PopValueError {
        match f {
            Fail::NotNow => PopValueError::Empty,
            Fail::Timeout => PopValueError::Timeout,
            Fail::Closed => PopValueError::Closed,
            Fail::Disconnected => PopValueError::Disconnected,
            Fail::Corrupt | Fail::TooSmall(_) => PopValueError::Corrupt,
        }
    }
}

/// Why a typed send on a pipe failed: one flat enum, no nesting.
#[derive(Debug)]
pub enum SendValueError {
    /// The value could not be encoded.
    Encode(postcard::Error),
    /// The encoded value is longer than the pipe's maximum message.
    TooLarge {
        /// Bytes of the encoding.
        len: usize,
        /// The pipe's maximum message length.
        max: usize,
    },
    /// The receiving end dropped or died (Python's `BrokenPipeError`).
    Disconnected,
    /// This end of a one-way pipe cannot send.
    NotWritable,
    /// The pipe is poisoned (its shared state is corrupt).
    Corrupt,
}

impl fmt::Display for SendValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendValueError::Encode(e) => write!(f, "cannot encode the value: {e}"),
            SendValueError::TooLarge { len, max } => write!(
                f,
                "the value encodes to {len} bytes, over the pipe's maximum of {max}"
            ),
            SendValueError::Disconnected => f.write_str("broken pipe: the receiving end is gone"),
            SendValueError::NotWritable => f.write_str("this end of a one-way pipe cannot send"),
            SendValueError::Corrupt => {
                f.write_str("the pipe is poisoned: its shared state is corrupt")
            }
        }
    }
}

impl Error for SendValueError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SendValueError::Encode(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a typed receive on a pipe returned no value: one flat enum, no nesting.
#[derive(Debug)]
pub enum RecvValueError {
    /// End of stream: the sending end is gone and everything it sent was received (Python's
    /// `EOFError`).
    Disconnected,
    /// This end of a one-way pipe cannot receive.
    NotReadable,
    /// The pipe is poisoned (its shared state is corrupt).
    Corrupt,
    /// The message did not decode as the requested type (it was consumed).
    Decode(postcard::Error),
}

impl fmt::Display for RecvValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvValueError::Disconnected => f.write_str("end of stream: the sending end is gone"),
            RecvValueError::NotReadable => f.write_str("this end of a one-way pipe cannot receive"),
            RecvValueError::Corrupt => {
                f.write_str("the pipe is poisoned: its shared state is corrupt")
            }
            RecvValueError::Decode(e) => write!(f, "cannot decode the message: {e}"),
        }
    }
}

impl Error for RecvValueError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RecvValueError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(v)
}

fn decode<T: DeserializeOwned>(bytes: Result<Vec<u8>, Fail>) -> Result<T, PopValueError> {
    let bytes = bytes.map_err(PopValueError::of)?;
    postcard::from_bytes(&bytes).map_err(PopValueError::Decode)
}

impl BytesProducer {
    /// Encodes `value` and pushes it, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// See [`PushValueError`].
    pub fn push_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), PushValueError> {
        let bytes = encode(value).map_err(PushValueError::Encode)?;
        self.push(bytes).map_err(|e| PushValueError::of(e.widen()))
    }

    /// Encodes `value` and pushes it without waiting.
    ///
    /// # Errors
    ///
    /// See [`PushValueError`] (`Full` included).
    pub fn try_push_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), PushValueError> {
        let bytes = encode(value).map_err(PushValueError::Encode)?;
        self.try_push(bytes)
            .map_err(|e| PushValueError::of(e.widen()))
    }
}

impl BytesConsumer {
    /// Pops a message, sleeping while the queue is empty, and decodes it as `T`.
    ///
    /// # Errors
    ///
    /// See [`PopValueError`].
    pub fn pop_value<T: DeserializeOwned>(&self) -> Result<T, PopValueError> {
        decode(self.pop().map_err(|e| e.fail()))
    }

    /// Pops without waiting and decodes as `T`.
    ///
    /// # Errors
    ///
    /// See [`PopValueError`] (`Empty` included).
    pub fn try_pop_value<T: DeserializeOwned>(&self) -> Result<T, PopValueError> {
        decode(self.try_pop().map_err(|e| e.fail()))
    }

    /// Pops, waiting at most `timeout`, and decodes as `T`.
    ///
    /// # Errors
    ///
    /// See [`PopValueError`] (`Timeout` included).
    pub fn pop_value_timeout<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T, PopValueError> {
        decode(self.pop_timeout(timeout).map_err(|e| e.fail()))
    }
}

impl JoinableProducer {
    /// Encodes `value` and puts it, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// See [`PushValueError`].
    pub fn push_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), PushValueError> {
        let bytes = encode(value).map_err(PushValueError::Encode)?;
        self.push(bytes).map_err(|e| PushValueError::of(e.widen()))
    }
}

impl JoinableConsumer {
    /// Takes an item, sleeping while the queue is empty, and decodes it as `T`. Mark it done
    /// with [`JoinableQueue::task_done`](crate::joinable::JoinableQueue::task_done), also when
    /// it did not decode.
    ///
    /// # Errors
    ///
    /// See [`PopValueError`].
    pub fn pop_value<T: DeserializeOwned>(&self) -> Result<T, PopValueError> {
        decode(self.pop().map_err(|e| e.fail()))
    }
}

impl PipeEnd {
    /// Encodes `value` and sends it, waiting while the pipe is full (Python's
    /// `Connection.send`).
    ///
    /// # Errors
    ///
    /// See [`SendValueError`].
    pub fn send_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), SendValueError> {
        let bytes = encode(value).map_err(SendValueError::Encode)?;
        self.send_bytes(bytes).map_err(|e| match e {
            SendError::TooLarge { msg, max } => SendValueError::TooLarge {
                len: msg.len(),
                max,
            },
            SendError::NotWritable(_) => SendValueError::NotWritable,
            SendError::Corrupt(_) => SendValueError::Corrupt,
            SendError::Disconnected(_) => SendValueError::Disconnected,
        })
    }

    /// Receives a message and decodes it as `T` (Python's `Connection.recv`).
    ///
    /// # Errors
    ///
    /// See [`RecvValueError`].
    pub fn recv_value<T: DeserializeOwned>(&self) -> Result<T, RecvValueError> {
        let bytes = self.recv_bytes().map_err(|e| match e {
            RecvError::NotReadable => RecvValueError::NotReadable,
            RecvError::Corrupt => RecvValueError::Corrupt,
            RecvError::Disconnected => RecvValueError::Disconnected,
        })?;
        postcard::from_bytes(&bytes).map_err(RecvValueError::Decode)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::bytes::{ByteQueue, Flavor};
    use crate::codec::{PopValueError, PushValueError, RecvValueError};
    use crate::pipe::Pipe;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Item {
        Int(i64),
        None,
        Str(String),
    }

    #[test]
    fn round_trip_too_large_and_wrong_type() {
        let q = ByteQueue::heap(Flavor::Mpmc, 4, 16).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        let list = vec![Item::Int(42), Item::None, Item::Str("hello".into())];
        tx.push_value(&list).unwrap();
        assert_eq!(rx.pop_value::<Vec<Item>>().unwrap(), list);
        match tx.try_push_value(&"x".repeat(40)) {
            Err(PushValueError::TooLarge { len: 41, max: 16 }) => {}
            other => panic!("{other:?}"),
        }
        tx.push_value(&u8::MAX).unwrap();
        assert!(matches!(
            rx.try_pop_value::<String>(),
            Err(PopValueError::Decode(_))
        ));
        assert!(matches!(
            rx.try_pop_value::<u8>(),
            Err(PopValueError::Empty)
        ));
        drop(tx);
        assert!(matches!(
            rx.pop_value::<u8>(),
            Err(PopValueError::Disconnected)
        ));
    }

    /// Every error converts with `?` into a boxed `Send + Sync` error.
    #[test]
    fn errors_are_static_send_sync() {
        fn check<E: std::error::Error + Send + Sync + 'static>() {}
        check::<PushValueError>();
        check::<PopValueError>();
        check::<crate::codec::SendValueError>();
        check::<RecvValueError>();
        fn uses_question_mark() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
            let q = ByteQueue::heap(Flavor::Spsc, 1, 8)?;
            let (tx, rx) = (q.producer()?, q.consumer()?);
            tx.push_value(&7u8)?;
            Ok(rx.pop_value::<u8>()?)
        }
        assert_eq!(uses_question_mark().unwrap(), 7);
    }

    #[test]
    fn pipe_values_and_eof() {
        let (a, b) = Pipe::heap_pair(true, 2, 64).unwrap();
        b.send_value(&(42u8, Option::<u8>::None, "hello")).unwrap();
        drop(b);
        let got: (u8, Option<u8>, String) = a.recv_value().unwrap();
        assert_eq!(got, (42, None, "hello".to_owned()));
        assert!(matches!(
            a.recv_value::<u8>(),
            Err(RecvValueError::Disconnected)
        ));
    }
}
