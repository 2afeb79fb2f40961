//! Layer diff.

pub(crate) mod tar_writer;
