//! Placeholder: the queue benches land with their crate.
fn main() {}
