//! Placeholder: the value_array benches land with their crate.
fn main() {}
