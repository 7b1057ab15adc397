//! The builder core every object kind shares: the three knobs of the workspace's builder
//! convention (`mode`, `open_timeout`, `wait_strategy`), held in one [`Knobs`] value and
//! exposed on each kind's builder by one macro, [`knob_methods!`](crate::knob_methods).
//!
//! A kind's builder keeps a `knobs: Knobs` field, writes `shm_core::knob_methods!();` inside its
//! `impl` block (the three methods become inherent methods: callers import nothing), and hands
//! its [`SegmentBuilder`] through [`Knobs::apply`] before it creates or opens.
//!
//! # Examples
//!
//! ```
//! use shm_core::builder::Knobs;
//! use shm_core::{ObjectKind, Segment, SegmentName, WaitStrategy};
//! use std::time::Duration;
//!
//! /// A kind's builder: its own knobs beside the shared ones.
//! #[derive(Debug)]
//! struct Builder {
//!     name: SegmentName,
//!     knobs: Knobs,
//! }
//!
//! impl Builder {
//!     shm_core::knob_methods!();
//! }
//!
//! let name = SegmentName::unique();
//! let b = Builder { name: name.clone(), knobs: Knobs::default() }
//!     .mode(0o640)
//!     .open_timeout(Duration::from_secs(2))
//!     .wait_strategy(WaitStrategy::busy_poll());
//! assert_eq!(b.knobs.mode, Some(0o640));
//! assert_eq!(b.knobs.strategy, WaitStrategy::busy_poll());
//!
//! let seg = b
//!     .knobs
//!     .apply(Segment::builder(&b.name, ObjectKind::RawArray))
//!     .body_len(8)
//!     .create(|_, _| {})
//!     .unwrap();
//! assert_eq!(seg.header().body_len(), 8);
//! ```

use crate::segment::SegmentBuilder;
use crate::sync::WaitStrategy;
use std::time::Duration;

/// The knobs every object kind's builder has, as the workspace's builder convention names
/// them. Unset knobs keep the defaults of [`SegmentBuilder`] and [`WaitStrategy`].
///
/// | knob | who uses it | default |
/// | --- | --- | --- |
/// | [`mode`](Knobs::mode) | the creator: permission bits of the segment file | `0o600` |
/// | [`open_timeout`](Knobs::open_timeout) | an opener: how long it waits for the creator to publish | 5 s ([`DEFAULT_OPEN_TIMEOUT`](crate::segment::DEFAULT_OPEN_TIMEOUT)) |
/// | [`strategy`](Knobs::strategy) | the handles: how their blocking calls wait | [`WaitStrategy::default()`] |
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Knobs {
    /// Permission bits of the segment file on create (`None`: `0o600`). An opener ignores it.
    pub mode: Option<u32>,
    /// How long an opener waits for the creator to publish the segment (`None`: 5 s).
    pub open_timeout: Option<Duration>,
    /// How the handles made by the builder wait when they block.
    pub strategy: WaitStrategy,
}

impl Knobs {
    /// `b` with the mode and the open timeout set, where given (the wait strategy is the
    /// handles', not the segment's: the kind passes [`strategy`](Knobs::strategy) on).
    pub fn apply(&self, mut b: SegmentBuilder) -> SegmentBuilder {
        if let Some(m) = self.mode {
            b = b.mode(m);
        }
        if let Some(t) = self.open_timeout {
            b = b.open_timeout(t);
        }
        b
    }
}

/// Writes the shared knob methods, `mode(u32)`, `open_timeout(Duration)` and
/// `wait_strategy(WaitStrategy)`, as inherent methods of a builder that holds a
/// [`Knobs`](crate::builder::Knobs).
///
/// Use it inside the builder's `impl` block:
///
/// - `shm_core::knob_methods!();`: all three, on a field named `knobs`;
/// - `shm_core::knob_methods!(field);`: all three, on the field `field`;
/// - `shm_core::knob_methods!(field; mode, open_timeout);`: only the knobs listed (say, a kind
///   whose handles never block has no `wait_strategy`, and a generic builder gives it only to
///   the instances that block, in a second `impl` block).
///
/// Each method sets its knob and returns the builder. See [the module](crate::builder) for an
/// example.
#[macro_export]
macro_rules! knob_methods {
    () => {
        $crate::knob_methods!(knobs; mode, open_timeout, wait_strategy);
    };
    ($field:ident) => {
        $crate::knob_methods!($field; mode, open_timeout, wait_strategy);
    };
    ($field:ident; $($knob:ident),+ $(,)?) => {
        $($crate::knob_methods!(@knob $field $knob);)+
    };
    (@knob $field:ident mode) => {
        /// Permission bits of the segment file (creator only; default `0o600`). An opener
        /// ignores it.
        pub fn mode(mut self, mode: u32) -> Self {
            self.$field.mode = ::core::option::Option::Some(mode);
            self
        }
    };
    (@knob $field:ident open_timeout) => {
        /// How long `open` (and `open_or_create`, when it finds the name taken) waits for the
        /// creator to publish the segment (default 5 s). An opener that finds the creator
        /// dead stops waiting at once.
        pub fn open_timeout(mut self, timeout: ::core::time::Duration) -> Self {
            self.$field.open_timeout = ::core::option::Option::Some(timeout);
            self
        }
    };
    (@knob $field:ident wait_strategy) => {
        /// How the blocking calls of the object, and of the handles made from it, wait:
        /// spin, then sleep on the futex (default:
        /// [`WaitStrategy::default`](shm_core::WaitStrategy::default), adaptive). Not recorded
        /// in the segment: each handle chooses its own.
        pub fn wait_strategy(mut self, strategy: $crate::WaitStrategy) -> Self {
            self.$field.strategy = strategy;
            self
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectKind, Segment, SegmentName};

    struct B {
        k: Knobs,
    }
    impl B {
        knob_methods!(k);
    }

    /// Only the knobs listed: a kind whose handles never block.
    struct NoWait {
        knobs: Knobs,
    }
    impl NoWait {
        knob_methods!(knobs; mode, open_timeout);
    }

    #[test]
    fn methods_set_the_knobs() {
        let b = B {
            k: Knobs::default(),
        };
        assert_eq!(b.k, Knobs::default());
        let b = b
            .mode(0o640)
            .open_timeout(Duration::from_millis(7))
            .wait_strategy(WaitStrategy::busy_poll());
        assert_eq!(
            b.k,
            Knobs {
                mode: Some(0o640),
                open_timeout: Some(Duration::from_millis(7)),
                strategy: WaitStrategy::busy_poll(),
            }
        );
        let n = NoWait {
            knobs: Knobs::default(),
        }
        .open_timeout(Duration::from_secs(1))
        .mode(0o604);
        assert_eq!(n.knobs.mode, Some(0o604));
        assert_eq!(n.knobs.open_timeout, Some(Duration::from_secs(1)));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // creates a segment
    fn apply_sets_the_mode_of_the_file() {
        let name = SegmentName::unique();
        let k = Knobs {
            mode: Some(0o640),
            ..Knobs::default()
        };
        let seg = k
            .apply(Segment::builder(&name, ObjectKind::RawArray))
            .body_len(8)
            .create(|_, _| {})
            .unwrap();
        let info = crate::inspect(&name).unwrap();
        drop(seg);
        assert_eq!(info.mode & 0o777, 0o640, "{info:?}");
    }
}
