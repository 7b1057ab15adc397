//! The child roles, one module per crate; each registers its roles as `<crate>.<role>`.

pub mod array;
pub mod core;
pub mod lock;
pub mod manager;
pub mod pool;
pub mod process;
pub mod queue;
pub mod value;

use shm_process::Roles;

/// Every role of every module.
pub fn all() -> Roles {
    let roles = Roles::new();
    let roles = core::register(roles);
    let roles = process::register(roles);
    let roles = lock::register(roles);
    let roles = value::register(roles);
    let roles = array::register(roles);
    let roles = manager::register(roles);
    let roles = pool::register(roles);
    queue::register(roles)
}
