//! sqlguard: boringly reliable MySQL/MariaDB backups.
//!
//! The library owns the domain; `main.rs` only parses, resolves settings, dispatches and maps the
//! result to an exit code. See ARCHITECTURE.md for the map of modules and the data path.

pub mod backup;
pub mod binlog;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod complete;
pub mod compress;
pub mod config;
pub mod crypt;
pub mod duration;
pub mod env_vars;
pub mod error;
pub mod exit;
pub mod health;
pub mod hooks;
pub mod host;
pub mod index;
pub mod inventory;
pub mod joblock;
pub mod kubernetes;
pub mod layout;
pub mod metrics;
pub mod mysql;
pub mod net;
pub mod notify;
pub mod pipeline;
pub mod process;
pub mod prune;
pub mod publish;
pub mod report;
pub mod restore;
pub mod retention;
pub mod run;
pub mod schedule;
pub mod secret;
pub mod session;
pub mod signals;
pub mod sqlscan;
pub mod storage;
pub mod threads;
pub mod ui;
pub mod verify;

/// This build's version, recorded in every backup record.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
