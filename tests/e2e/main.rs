//! End-to-end tests of the `ccare` binary.
