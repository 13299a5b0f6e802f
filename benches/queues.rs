//! Queue benchmarks (placeholder until written).
fn main() {}
