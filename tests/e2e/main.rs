//! End-to-end tests: the real `jxg` binary, real certificates, real mutual TLS.

mod admin;
mod audit;
mod bench;
mod cli;
mod console;
mod corrections;
mod courts;
mod durability;
mod erasure;
mod faults;
mod identity;
mod limits;
mod logs;
mod migration;
mod nodes;
mod observability;
mod police;
mod policies;
mod postgres;
mod prosecution;
mod schemathesis;
mod simulate;
mod strict;
mod tls;
mod unreadable;
