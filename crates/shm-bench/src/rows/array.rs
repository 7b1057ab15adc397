//! array rows (being written).

use super::{Case, Group};
use shm_core::process::Roles;

/// The array tables.
pub fn groups() -> Vec<Group> {
    Vec::new()
}

/// The array cases.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The array rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r
}
