//! Testsuite.
