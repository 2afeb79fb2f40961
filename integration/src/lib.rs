//! Test fixtures and harness.
