//! Layer diff.
