//! Every environment variable that sqlguard reads, declared once, with its documentation.
//!
//! Nothing outside `config::settings` reads the environment: the binary collects `std::env::vars()`
//! once and hands them to [`crate::config::Settings::resolve`]. The README's environment table is
//! checked against [`ALL`] by a test, so this list and the docs cannot drift apart.

/// Prefix shared by every sqlguard variable; unknown variables with it are warned about.
pub const PREFIX: &str = "SQLGUARD_";

/// Path of the YAML config file (same as `--config`).
pub const CONFIG: &str = "SQLGUARD_CONFIG";
/// Name of the single server configured from the environment (default `default`).
pub const SERVER_NAME: &str = "SQLGUARD_SERVER_NAME";
/// Database server host.
pub const DB_HOST: &str = "SQLGUARD_DB_HOST";
/// Database server TCP port.
pub const DB_PORT: &str = "SQLGUARD_DB_PORT";
/// Database server Unix socket (used instead of host/port).
pub const DB_SOCKET: &str = "SQLGUARD_DB_SOCKET";
/// Database user.
pub const DB_USER: &str = "SQLGUARD_DB_USER";
/// Database password (never put it on a command line).
pub const DB_PASSWORD: &str = "SQLGUARD_DB_PASSWORD";
/// File whose first line is the database password.
pub const DB_PASSWORD_FILE: &str = "SQLGUARD_DB_PASSWORD_FILE";
/// TLS mode towards the database server.
pub const DB_TLS_MODE: &str = "SQLGUARD_DB_TLS_MODE";
/// CA certificate file that verifies the database server.
pub const DB_TLS_CA: &str = "SQLGUARD_DB_TLS_CA";
/// Comma-separated database names or globs to back up (default `*`).
pub const DATABASES: &str = "SQLGUARD_DATABASES";
/// Comma-separated database names or globs to skip.
pub const EXCLUDE_DATABASES: &str = "SQLGUARD_EXCLUDE_DATABASES";
/// Directory of the local storage (creates or overrides the single local storage).
pub const STORAGE_PATH: &str = "SQLGUARD_STORAGE_PATH";
/// Compression for every backup type: `zstd`, `xz` or `none`.
pub const COMPRESSION: &str = "SQLGUARD_COMPRESSION";
/// Compression level for every backup type.
pub const COMPRESSION_LEVEL: &str = "SQLGUARD_COMPRESSION_LEVEL";
/// Compressor threads for every backup type (0 = one per core).
pub const COMPRESSION_THREADS: &str = "SQLGUARD_COMPRESSION_THREADS";
/// Pushgateway URL (creates or overrides `metrics.pushgateway`).
pub const PUSHGATEWAY_URL: &str = "SQLGUARD_PUSHGATEWAY_URL";
/// `true` to skip pushing metrics (same as `--no-push`).
pub const NO_PUSH: &str = "SQLGUARD_NO_PUSH";
/// S3 bucket (creates or overrides the one S3 storage).
pub const S3_BUCKET: &str = "SQLGUARD_S3_BUCKET";
/// S3 endpoint URL.
pub const S3_ENDPOINT: &str = "SQLGUARD_S3_ENDPOINT";
/// S3 region.
pub const S3_REGION: &str = "SQLGUARD_S3_REGION";
/// Key prefix inside the S3 bucket.
pub const S3_PREFIX: &str = "SQLGUARD_S3_PREFIX";
/// `true` for path-style S3 addressing.
pub const S3_PATH_STYLE: &str = "SQLGUARD_S3_PATH_STYLE";
/// The usual AWS access key variable, used by S3 storages that name no key of their own.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// The usual AWS secret key variable, used by S3 storages that name no key of their own.
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Databases of each server dumped at once (overrides every server's `parallel`).
pub const PARALLEL: &str = "SQLGUARD_PARALLEL";
/// `true` to run at low CPU and I/O priority (same as `low_priority: true`).
pub const LOW_PRIORITY: &str = "SQLGUARD_LOW_PRIORITY";
/// Directory for sqlguard's lock files (default `/run/lock/sqlguard` as root, else a temp dir).
pub const LOCK_DIR: &str = "SQLGUARD_LOCK_DIR";

/// A healthchecks.io ping URL for every run of backup, prune and verify.
pub const NOTIFY_HEALTHCHECKS_URL: &str = "SQLGUARD_NOTIFY_HEALTHCHECKS_URL";
/// An Uptime Kuma push URL for every run of backup, prune and verify.
pub const NOTIFY_UPTIME_KUMA_URL: &str = "SQLGUARD_NOTIFY_UPTIME_KUMA_URL";
/// A webhook URL that receives the JSON document of every run of backup, prune and verify.
pub const NOTIFY_WEBHOOK_URL: &str = "SQLGUARD_NOTIFY_WEBHOOK_URL";

/// age recipients (public keys, comma- or space-separated) of every backup type.
pub const AGE_RECIPIENTS: &str = "SQLGUARD_AGE_RECIPIENTS";
/// A file of age recipients, one per line, for every backup type.
pub const AGE_RECIPIENTS_FILE: &str = "SQLGUARD_AGE_RECIPIENTS_FILE";
/// The age identity file (private keys) that decrypts backups on a restore host.
pub const AGE_IDENTITY_FILE: &str = "SQLGUARD_AGE_IDENTITY_FILE";

/// Every variable above with a one-line description, in documentation order.
pub const ALL: &[(&str, &str)] = &[
    (CONFIG, "Path of the YAML config file (same as --config)."),
    (
        SERVER_NAME,
        "Name of the server configured from the environment (default `default`).",
    ),
    (DB_HOST, "Database server host (default 127.0.0.1)."),
    (DB_PORT, "Database server TCP port (default 3306)."),
    (
        DB_SOCKET,
        "Database server Unix socket, used instead of host and port.",
    ),
    (DB_USER, "Database user."),
    (
        DB_PASSWORD,
        "Database password; reaches the client tools through a private in-memory option file only. Prefer the _FILE form: sqlguard blanks the value in its own environment block (/proc/PID/environ, which processes of the same user can read) as soon as it has read it, but whatever started sqlguard (a shell, a unit) may hold it in its own.",
    ),
    (
        DB_PASSWORD_FILE,
        "File whose first line is the database password (not together with `SQLGUARD_DB_PASSWORD`).",
    ),
    (
        DB_TLS_MODE,
        "TLS to the database server: default, disabled, required, verify_ca or verify_identity.",
    ),
    (
        DB_TLS_CA,
        "PEM file of the CA that signed the database server's certificate.",
    ),
    (
        DATABASES,
        "Comma-separated database names or globs to back up (default `*`).",
    ),
    (
        EXCLUDE_DATABASES,
        "Comma-separated database names or globs to skip.",
    ),
    (
        STORAGE_PATH,
        "Directory of the local storage, an absolute path (creates or overrides the one local storage).",
    ),
    (
        COMPRESSION,
        "Compression of every backup type: zstd, xz or none.",
    ),
    (COMPRESSION_LEVEL, "Compression level of every backup type."),
    (
        COMPRESSION_THREADS,
        "Compressor threads of every backup type (0 = one per core).",
    ),
    (
        S3_BUCKET,
        "S3 bucket; creates the S3 storage `s3`, or overrides the one S3 storage.",
    ),
    (
        S3_ENDPOINT,
        "S3 endpoint URL (http:// only for endpoints without TLS).",
    ),
    (S3_REGION, "S3 region (default us-east-1)."),
    (S3_PREFIX, "Key prefix inside the S3 bucket."),
    (
        S3_PATH_STYLE,
        "`true` for path-style S3 addressing (most non-AWS servers).",
    ),
    (
        PUSHGATEWAY_URL,
        "Pushgateway URL (sets metrics.pushgateway).",
    ),
    (
        NO_PUSH,
        "`true` to skip pushing metrics (same as --no-push).",
    ),
    (
        LOCK_DIR,
        "Directory for job locks and for index locks of S3 storages (an absolute path).",
    ),
    (
        PARALLEL,
        "Databases of each server dumped at once, 1-16 (overrides every server's `parallel`).",
    ),
    (
        LOW_PRIORITY,
        "`true` to run sqlguard and its children at low CPU and I/O priority (`low_priority`).",
    ),
    (
        NOTIFY_HEALTHCHECKS_URL,
        "healthchecks.io ping URL for every backup, prune and verify run (adds to `notify`).",
    ),
    (
        NOTIFY_UPTIME_KUMA_URL,
        "Uptime Kuma push URL for every backup, prune and verify run (adds to `notify`).",
    ),
    (
        NOTIFY_WEBHOOK_URL,
        "Webhook URL that gets the JSON document of every backup, prune and verify run.",
    ),
    (
        AGE_RECIPIENTS,
        "age public keys (`age1…`, comma- or space-separated) every backup type is encrypted to (replaces `age_recipients` of the file and of each type).",
    ),
    (
        AGE_RECIPIENTS_FILE,
        "File of age public keys, one per line, every backup type is encrypted to (with `SQLGUARD_AGE_RECIPIENTS`, both lists).",
    ),
    (
        AGE_IDENTITY_FILE,
        "age identity file (private keys, mode 0600) that decrypts backups: restore hosts only (`encryption.age_identity_file`).",
    ),
];

/// The command a hook runs for (`backup`, `prune`, `verify`).
pub const HOOK_COMMAND: &str = "SQLGUARD_COMMAND";
/// The backup type of a backup run.
pub const HOOK_TYPE: &str = "SQLGUARD_TYPE";
/// The hook point: `before`, `after_success`, `after_failure`, `finally`.
pub const HOOK_POINT: &str = "SQLGUARD_HOOK";
/// The run's status as the hook sees it.
pub const HOOK_STATUS: &str = "SQLGUARD_STATUS";
/// The exit code the run will have (after hooks only).
pub const HOOK_EXIT_CODE: &str = "SQLGUARD_EXIT_CODE";
/// Path of the run's JSON document.
pub const HOOK_RUN_JSON: &str = "SQLGUARD_RUN_JSON";
/// When the run started (RFC 3339, UTC).
pub const HOOK_STARTED_AT: &str = "SQLGUARD_STARTED_AT";
/// The servers the run covers, comma-separated (empty: every configured one).
pub const HOOK_SERVERS: &str = "SQLGUARD_SERVERS";

/// Variables sqlguard sets for its hooks (never reads), with their meaning. A hook that runs
/// sqlguard again passes them on without a warning.
pub const HOOK_FACTS: &[(&str, &str)] = &[
    (
        HOOK_COMMAND,
        "Hooks: the command of the run (backup, prune, verify, binlog).",
    ),
    (HOOK_TYPE, "Hooks: the backup type (backups only)."),
    (
        HOOK_POINT,
        "Hooks: which hook this is (before, after_success, after_failure, finally).",
    ),
    (
        HOOK_STATUS,
        "Hooks: running (before), success, failure, interrupted or skipped.",
    ),
    (
        HOOK_EXIT_CODE,
        "Hooks: the exit code the run ends with (after hooks only).",
    ),
    (
        HOOK_RUN_JSON,
        "Hooks: path of the run's JSON document, in a private directory removed after the run.",
    ),
    (
        HOOK_STARTED_AT,
        "Hooks: when the run started (RFC 3339, UTC).",
    ),
    (
        HOOK_SERVERS,
        "Hooks: the servers of the run, comma-separated (empty: every configured one).",
    ),
];

/// Slows the compressor by this many milliseconds per MiB (tests of a slow compressor only).
pub const TEST_COMPRESS_DELAY_MS: &str = "SQLGUARD_TEST_COMPRESS_DELAY_MS";

/// Threads whose names start with one of these (comma-separated) are refused, as a process or
/// thread limit would refuse them (tests of that limit only).
pub const TEST_REFUSE_THREADS: &str = "SQLGUARD_TEST_REFUSE_THREADS";

/// Variables for the test suite only, never for production, with their meaning.
pub const TESTING: &[(&str, &str)] = &[
    (
        TEST_COMPRESS_DELAY_MS,
        "Tests only: the compressor sleeps this many milliseconds per MiB, as a slow one would.",
    ),
    (
        TEST_REFUSE_THREADS,
        "Tests only: threads whose names start with one of these comma-separated prefixes are refused, as a thread limit (`ulimit -u`, `TasksMax`, a pids cgroup) would refuse them.",
    ),
];

/// Variables read from outside sqlguard's namespace, with their meaning.
pub const FOREIGN: &[(&str, &str)] = &[
    (
        AWS_ACCESS_KEY_ID,
        "S3 access key, for S3 storages whose config names none.",
    ),
    (
        AWS_SECRET_ACCESS_KEY,
        "S3 secret key, for S3 storages whose config names none.",
    ),
    (
        "NO_COLOR",
        "Set (to anything) to disable colour in tables (so does `TERM=dumb`).",
    ),
];

#[cfg(test)]
mod tests {
    /// The README documents every variable (and so cannot drift from this list).
    #[test]
    fn readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        for (name, doc) in super::ALL
            .iter()
            .chain(super::FOREIGN)
            .chain(super::TESTING)
            .chain(super::HOOK_FACTS)
        {
            let row = format!("| `{name}` | {doc} |");
            assert!(readme.contains(&row), "README lacks the row: {row}");
        }
    }
}
