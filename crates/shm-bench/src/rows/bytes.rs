//! bytes rows (being written).

use super::{Case, Group};
use shm_core::process::Roles;

/// The bytes tables.
pub fn groups() -> Vec<Group> {
    Vec::new()
}

/// The bytes cases.
pub fn cases() -> Vec<Case> {
    Vec::new()
}

/// The bytes rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r
}
