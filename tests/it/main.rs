//! Integration tests: the real `sqlguard` binary against a real MariaDB server (and, where the
//! issue needs them, a real S3-compatible server and Pushgateway), all on 127.0.0.1.

mod backup;
mod browser;
mod check;
mod completion;
mod config;
mod contrib;
mod encrypt;
mod failures;
mod image;
mod index;
mod metrics;
mod notify;
mod ops;
mod parallel;
mod pitr;
mod prune;
mod random_input;
mod report;
mod restore;
mod s3;
mod support;
mod trust;
mod verify;
