//! Placeholder: the lock benches land with their crate.
fn main() {}
