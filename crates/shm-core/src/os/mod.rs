//! The only place in the workspace that talks to the operating system.
//!
//! One file per platform, as memmap2 does; platforms without an implementation get a stub whose
//! calls fail with `io::ErrorKind::Unsupported`.

// Under loom the futex is modelled, so the real one goes unused there.
#[cfg(target_os = "linux")]
#[cfg_attr(loom, allow(dead_code))]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::*;

#[cfg(unix)]
mod process;
#[cfg(unix)]
pub(crate) use process::*;
