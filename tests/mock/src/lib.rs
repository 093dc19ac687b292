//! wsv2-mock
