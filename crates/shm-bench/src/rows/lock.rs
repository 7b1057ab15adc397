//! lock rows (being written).

use super::{Case, Group};
use shm_core::process::Roles;

/// The lock tables.
pub fn groups() -> Vec<Group> {
    Vec::new()
}

/// The lock cases.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The lock rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r
}
