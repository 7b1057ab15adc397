//! value rows (being written).

use super::{Case, Group};
use shm_core::process::Roles;

/// The value tables.
pub fn groups() -> Vec<Group> {
    Vec::new()
}

/// The value cases.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The value rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r
}
