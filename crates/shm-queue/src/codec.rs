//! Typed messages (feature `serde`): any `Serialize` / `Deserialize` value through the byte
//! queues, joinable queues and pipes, encoded with [postcard](https://docs.rs/postcard).
//!
//! The encoded value must fit the queue's `max_message`; a value that does not is
//! `Send(TooLarge { msg, .. })` with its encoding handed back. A message that does not decode
//! as the requested type (another type was sent, or garbage) is [`RecvValueError::Decode`]; the
//! message is consumed either way.
//!
//! # Examples
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use shm_queue::bytes::{ByteQueue, Mode};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Job { id: u32, name: String, args: Vec<i64> }
//!
//! let q = ByteQueue::heap(Mode::Spsc, 4, 128)?;
//! let (tx, rx) = (q.producer()?, q.consumer()?);
//! let job = Job { id: 7, name: "hello".into(), args: vec![42, -1] };
//! tx.push_value(&job)?;
//! assert_eq!(rx.pop_value::<Job>()?, job);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bytes::{BytesConsumer, BytesPopError, BytesProducer, BytesPushError};
use crate::joinable::{JoinableConsumer, JoinableProducer};
use crate::pipe::{PipeEnd, RecvError, SendError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Why a typed push or send failed: encoding, or the underlying byte operation (whose error
/// hands the encoded message back).
#[derive(Debug)]
pub enum SendValueError<E> {
    /// The value could not be encoded.
    Encode(postcard::Error),
    /// The byte-level push or send failed.
    Send(E),
}

impl<E: fmt::Display> fmt::Display for SendValueError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendValueError::Encode(e) => write!(f, "cannot encode the value: {e}"),
            SendValueError::Send(e) => write!(f, "{e}"),
        }
    }
}

impl<E: Error + 'static> Error for SendValueError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SendValueError::Encode(e) => Some(e),
            SendValueError::Send(e) => Some(e),
        }
    }
}

/// Why a typed pop or receive failed: the underlying byte operation, or decoding.
#[derive(Debug)]
pub enum RecvValueError<E> {
    /// The byte-level pop or receive failed.
    Recv(E),
    /// The message did not decode as the requested type (it was consumed).
    Decode(postcard::Error),
}

impl<E: fmt::Display> fmt::Display for RecvValueError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvValueError::Recv(e) => write!(f, "{e}"),
            RecvValueError::Decode(e) => write!(f, "cannot decode the message: {e}"),
        }
    }
}

impl<E: Error + 'static> Error for RecvValueError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RecvValueError::Recv(e) => Some(e),
            RecvValueError::Decode(e) => Some(e),
        }
    }
}

fn encode<T: Serialize + ?Sized, E>(v: &T) -> Result<Vec<u8>, SendValueError<E>> {
    postcard::to_stdvec(v).map_err(SendValueError::Encode)
}

fn decode<T: DeserializeOwned, E>(bytes: Result<Vec<u8>, E>) -> Result<T, RecvValueError<E>> {
    let bytes = bytes.map_err(RecvValueError::Recv)?;
    postcard::from_bytes(&bytes).map_err(RecvValueError::Decode)
}

/// Error of a typed push.
pub type PushValueError = SendValueError<BytesPushError<Vec<u8>>>;
/// Error of a typed pop.
pub type PopValueError = RecvValueError<BytesPopError>;

impl BytesProducer {
    /// Encodes `value` and pushes it, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`SendValueError::Encode`], or the push error of [`push`](Self::push) with the encoding.
    pub fn push_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), PushValueError> {
        self.push(encode(value)?).map_err(SendValueError::Send)
    }

    /// Encodes `value` and pushes it without waiting.
    ///
    /// # Errors
    ///
    /// As [`push_value`](Self::push_value), with [`try_push`](Self::try_push)'s errors.
    pub fn try_push_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), PushValueError> {
        self.try_push(encode(value)?).map_err(SendValueError::Send)
    }
}

impl BytesConsumer {
    /// Pops a message, sleeping while the queue is empty, and decodes it as `T`.
    ///
    /// # Errors
    ///
    /// [`RecvValueError::Recv`] with [`pop`](Self::pop)'s error, or [`RecvValueError::Decode`].
    pub fn pop_value<T: DeserializeOwned>(&self) -> Result<T, PopValueError> {
        decode(self.pop())
    }

    /// Pops without waiting and decodes as `T`.
    ///
    /// # Errors
    ///
    /// As [`pop_value`](Self::pop_value), with [`try_pop`](Self::try_pop)'s errors.
    pub fn try_pop_value<T: DeserializeOwned>(&self) -> Result<T, PopValueError> {
        decode(self.try_pop())
    }

    /// Pops, waiting at most `timeout`, and decodes as `T`.
    ///
    /// # Errors
    ///
    /// As [`pop_value`](Self::pop_value), and `Timeout`.
    pub fn pop_value_timeout<T: DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T, PopValueError> {
        decode(self.pop_timeout(timeout))
    }
}

impl JoinableProducer {
    /// Encodes `value` and puts it, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`BytesProducer::push_value`].
    pub fn put_value<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), PushValueError> {
        self.put(encode(value)?).map_err(SendValueError::Send)
    }
}

impl JoinableConsumer {
    /// Takes an item, sleeping while the queue is empty, and decodes it as `T`. Mark it done
    /// with [`JoinableQueue::task_done`](crate::joinable::JoinableQueue::task_done), also when
    /// it did not decode.
    ///
    /// # Errors
    ///
    /// As [`BytesConsumer::pop_value`].
    pub fn get_value<T: DeserializeOwned>(&self) -> Result<T, PopValueError> {
        decode(self.get())
    }
}

impl PipeEnd {
    /// Encodes `value` and sends it (Python's `Connection.send`).
    ///
    /// # Errors
    ///
    /// [`SendValueError::Encode`], or [`send_bytes`](Self::send_bytes)'s error with the encoding.
    pub fn send_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<(), SendValueError<SendError<Vec<u8>>>> {
        self.send_bytes(encode(value)?)
            .map_err(SendValueError::Send)
    }

    /// Receives a message and decodes it as `T` (Python's `Connection.recv`).
    ///
    /// # Errors
    ///
    /// [`RecvValueError::Recv`] with [`recv_bytes`](Self::recv_bytes)'s error (`Eof`, …), or
    /// [`RecvValueError::Decode`].
    pub fn recv_value<T: DeserializeOwned>(&self) -> Result<T, RecvValueError<RecvError>> {
        decode(self.recv_bytes())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::bytes::{ByteQueue, BytesPushError, Mode};
    use crate::codec::{RecvValueError, SendValueError};
    use crate::pipe::{Pipe, RecvError};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Item {
        Int(i64),
        None,
        Str(String),
    }

    #[test]
    fn round_trip_too_large_and_wrong_type() {
        let q = ByteQueue::heap(Mode::Mpmc, 4, 16).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        let list = vec![Item::Int(42), Item::None, Item::Str("hello".into())];
        tx.push_value(&list).unwrap();
        assert_eq!(rx.pop_value::<Vec<Item>>().unwrap(), list);
        match tx.try_push_value(&"x".repeat(40)) {
            Err(SendValueError::Send(BytesPushError::TooLarge { msg, max: 16 })) => {
                assert_eq!(msg.len(), 41)
            }
            other => panic!("{other:?}"),
        }
        tx.push_value(&u8::MAX).unwrap();
        assert!(matches!(
            rx.try_pop_value::<String>(),
            Err(RecvValueError::Decode(_))
        ));
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
            Err(RecvValueError::Recv(RecvError::Eof))
        ));
    }
}
