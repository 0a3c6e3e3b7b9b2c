//! Environment overrides: the `SQLGUARD_*` variables that set or override config keys, read with
//! envy. Which variable overrides which key, and when several sections make that ambiguous, is
//! decided by the section modules; this one only reads and types the variables.

use serde::Deserialize;

/// Settings that the environment may override, read with envy from `SQLGUARD_*`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EnvOverrides {
    pub(super) config: Option<String>,
    pub(super) server_name: Option<String>,
    pub(super) db_host: Option<String>,
    pub(super) db_port: Option<u16>,
    pub(super) db_socket: Option<String>,
    pub(super) db_user: Option<String>,
    pub(super) db_password: Option<String>,
    pub(super) db_password_file: Option<String>,
    pub(super) databases: Option<String>,
    pub(super) exclude_databases: Option<String>,
    pub(super) storage_path: Option<String>,
    pub(super) s3_bucket: Option<String>,
    pub(super) s3_endpoint: Option<String>,
    pub(super) s3_region: Option<String>,
    pub(super) s3_prefix: Option<String>,
    pub(super) s3_path_style: Option<bool>,
    pub(super) pushgateway_url: Option<String>,
    pub(super) no_push: Option<bool>,
    pub(super) compression: Option<String>,
    pub(super) compression_level: Option<i32>,
    pub(super) compression_threads: Option<u32>,
    pub(super) lock_dir: Option<String>,
}

impl EnvOverrides {
    pub(super) fn sets_server(&self) -> bool {
        self.server_name.is_some()
            || self.db_host.is_some()
            || self.db_port.is_some()
            || self.db_socket.is_some()
            || self.db_user.is_some()
            || self.db_password.is_some()
            || self.db_password_file.is_some()
            || self.databases.is_some()
            || self.exclude_databases.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn environment_alone_configures_one_server_and_local_storage() {
        let s = Settings::resolve(
            None,
            &env(&[
                (ev::DB_HOST, "db.example"),
                (ev::DB_PORT, "3307"),
                (ev::DB_USER, "bk"),
                (ev::DB_PASSWORD, "pw"),
                (ev::STORAGE_PATH, "/var/backups/sql"),
                (ev::DATABASES, "shop, crm_*"),
            ]),
        )
        .unwrap();
        assert_eq!(s.servers.len(), 1);
        let srv = &s.servers[0];
        assert_eq!(srv.name, "default");
        assert_eq!(srv.host.as_deref(), Some("db.example"));
        assert_eq!(srv.port, Some(3307));
        assert_eq!(srv.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(srv.include, vec!["shop", "crm_*"]);
        assert_eq!(s.storages[0].name, "local");
        let names: Vec<_> = s.backup_types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["daily", "hourly", "manual", "monthly", "weekly"]);
    }

    #[test]
    fn environment_beats_file_and_file_beats_defaults() {
        let s = from_yaml(
            "servers:\n  main:\n    host: filehost\n    port: 3310\n    user: u\nstorage:\n  local:\n    type: local\n    path: /from/file\n",
            &[(ev::DB_HOST, "envhost"), (ev::STORAGE_PATH, "/from/env")],
        )
        .unwrap();
        assert_eq!(s.servers[0].name, "main");
        assert_eq!(s.servers[0].host.as_deref(), Some("envhost"));
        assert_eq!(s.servers[0].port, Some(3310));
        assert!(
            matches!(&s.storages[0].kind, StorageKind::Local { path } if path == Path::new("/from/env"))
        );
    }

    #[test]
    fn unknown_prefixed_variables_warn() {
        let s = from_yaml(MINIMAL, &[("SQLGUARD_DB_PASWORD", "x")]).unwrap();
        assert!(s.warnings[0].contains("SQLGUARD_DB_PASWORD"));
    }

    #[test]
    fn several_servers_refuse_single_server_environment() {
        let e = from_yaml(
            "servers:\n  a: {}\n  b: {}\nstorage:\n  l:\n    type: local\n    path: /b\n",
            &[(ev::DB_HOST, "h")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2 servers"), "{e}");
    }
}
