//! End-to-end tests: the real `jxg` binary, real certificates, real mutual TLS.

mod cli;
mod durability;
mod identity;
mod police;
