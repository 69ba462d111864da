//! Shell word expansion (being written).
