//! wsv2-tests
