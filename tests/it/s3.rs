//! S3-compatible storage against a real server (s3s-fs): the storage contract, local + S3 in one
//! run, multipart uploads, retries, and every fault leaving the local copy intact.

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use sqlguard::config::S3Settings;
use sqlguard::secret::Secret;
use sqlguard::storage::s3::S3Storage;
use sqlguard::storage::RetrySettings;
use sqlguard::storage::Storage;
use sqlguard::ui::Ui;

use crate::support::{mariadb, s3, Env, Record, Run, S3};

fn settings(server: &S3, bucket: &str, prefix: &str) -> S3Settings {
    S3Settings {
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        bucket: bucket.into(),
        prefix: prefix.into(),
        path_style: true,
        access_key_id: server.access_key(),
        secret_access_key: Secret::new(server.secret_key()),
        ca_file: None,
        storage_class: None,
        sse: None,
        sse_kms_key_id: None,
    }
}

fn storage(server: &S3, bucket: &str, prefix: &str) -> S3Storage {
    let locks = tempfile::tempdir().unwrap().keep();
    S3Storage::new(
        "s3",
        &settings(server, bucket, prefix),
        RetrySettings::default(),
        locks,
        Ui::silent(),
    )
    .unwrap()
}

/// A fresh bucket on the shared s3s-fs, as a behaviour-suite subject, with keys under `prefix`.
fn subject(prefix: &str) -> sqlguard::storage::behaviour::Subject {
    let server = s3();
    let bucket = server.bucket("behaviour");
    sqlguard::storage::behaviour::Subject {
        storage: Box::new(storage(server, &bucket, prefix)),
        base: "srv/".into(),
        keep: Box::new(bucket),
    }
}

/// The storage contract, one test per promise, on a real S3-compatible server.
mod behaviour {
    sqlguard::storage_behaviour_tests!(super::subject(""));
}

/// The same with a key prefix inside the bucket.
mod behaviour_with_prefix {
    sqlguard::storage_behaviour_tests!(super::subject("team/prod"));
}

#[test]
fn a_prefix_keeps_every_key_below_it() {
    let server = s3();
    let prefixed = server.bucket("behaviour-prefix");
    let s = storage(server, &prefixed, "team/prod");
    s.put_bytes("srv/index.json", b"i").unwrap();
    let mut w = s.put_stream("srv/db/daily/a.sql.zst", None).unwrap();
    std::io::Write::write_all(&mut w, b"a").unwrap();
    w.commit().unwrap();
    let keys = server.keys(&prefixed);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("team/prod/")), "{keys:?}");
}

/// A config with a local storage and the S3 storage `offsite`, both used by `daily`.
fn two_storage_config(env: &Env, server: &S3, bucket: &str, server_extra: &str, compression: &str) {
    env.write_config(
        server_extra,
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\n{}retry: {{attempts: 3, max_backoff: 1s}}\nbackup_types:\n  daily:\n    storages: [local, offsite]\n    compression: {{algorithm: {compression}{}}}\n    retention: {{keep_last: 7}}\n",
            server.storage_yaml("offsite", bucket),
            if compression == "none" { "" } else { ", level: 1" }
        ),
    );
}

fn by_storage<'a>(records: &'a [Record], storage: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.storage == storage)
        .unwrap_or_else(|| panic!("no record for {storage}: {records:?}"))
}

#[test]
fn local_and_s3_copies_are_identical_and_the_s3_copy_restores() {
    let db = mariadb();
    let name = db.create_shop("s3rt", 2000);
    let server = s3();
    let bucket = server.bucket("copies");
    let env = Env::new();
    two_storage_config(&env, server, &bucket, "", "zstd");
    env.run(&["backup", "--type", "daily", "--db", &name])
        .expect(0);
    let list = env.list(&[]);
    assert_eq!(list.backups.len(), 2);
    let (local, remote) = (
        by_storage(&list.backups, "local"),
        by_storage(&list.backups, "offsite"),
    );
    assert_eq!(
        (local.status.as_str(), remote.status.as_str()),
        ("success", "success")
    );
    assert_eq!(local.key, remote.key);
    assert_eq!(local.sha256, remote.sha256);
    let key = local.key.clone().unwrap();
    let on_disk = std::fs::read(env.storage().join(&key)).unwrap();
    // Read the S3 copy back through the S3 API, not from s3s-fs's directory.
    let mut via_api = Vec::new();
    storage(server, &bucket, "")
        .get(&key)
        .unwrap()
        .read_to_end(&mut via_api)
        .unwrap();
    assert_eq!(on_disk, via_api, "local and S3 objects differ");
    let plain = zstd::decode_all(via_api.as_slice()).unwrap();
    let restored = db.create_db("s3rt_restored");
    db.restore(&restored, &plain);
    assert_eq!(db.checksums(&name), db.checksums(&restored));
    // The index and manifest live in the bucket beside the object.
    let keys = server.keys(&bucket);
    for k in [
        "main/index.json".to_string(),
        "main/index/summary.json".to_string(),
        format!("main/index/db/{name}/{}.json", month_of(remote)),
    ] {
        assert!(keys.contains(&k), "{k} missing: {keys:?}");
    }
    assert!(
        keys.contains(remote.manifest_key.as_ref().unwrap()),
        "{keys:?}"
    );
    assert_eq!(env.list(&["--storage", "offsite"]).backups.len(), 1);
}

#[test]
fn a_large_dump_goes_up_in_several_parts() {
    let db = mariadb();
    let name = db.create_shop("s3big", 420_000);
    let server = s3();
    let bucket = server.bucket("big");
    let env = Env::new();
    two_storage_config(&env, server, &bucket, "", "none");
    let r = env.run(&["-v", "backup", "--type", "daily", "--db", &name]);
    r.expect(0);
    let parts = r
        .stderr
        .lines()
        .filter(|l| l.contains("storage 'offsite': uploaded part"))
        .count();
    let list = env.list(&["--storage", "offsite"]);
    let rec = &list.backups[0];
    assert!(
        rec.compressed_bytes > 64 << 20,
        "dump too small for the test: {}",
        rec.compressed_bytes
    );
    assert!(parts >= 8, "{parts} parts:\n{}", r.stderr);
    let path = server.object_path(&bucket, rec.key.as_ref().unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        rec.compressed_bytes
    );
    assert_eq!(Some(crate::support::sha256_file(&path)), rec.sha256);
    // No multipart upload of this bucket is left open (asked through the S3 API: the server
    // is shared, and other tests' uploads are in flight in its directory).
    let open = storage(server, &bucket, "")
        .orphans("", chrono::Utc::now() + chrono::Duration::hours(1))
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
}

/// The shape every S3 fault must have: exit 1, the S3 copy recorded as failed with `expected`
/// in its error, nothing under the final key, and the local copy intact and recorded.
fn assert_fault(env: &Env, r: &Run, server_keys: &[String], expected: &str) {
    r.expect(1);
    let list = env.list(&[]);
    let local = by_storage(&list.backups, "local");
    let remote = by_storage(&list.backups, "offsite");
    assert_eq!(local.status, "success");
    let path = env.storage().join(local.key.as_ref().unwrap());
    assert_eq!(
        Some(crate::support::sha256_file(&path)),
        local.sha256,
        "local copy damaged"
    );
    assert_eq!(remote.status, "failed");
    let err = remote.error.clone().unwrap();
    assert!(
        err.contains(expected),
        "error {err:?} does not say {expected:?}"
    );
    assert!(remote.key.is_none());
    let key = local.key.clone().unwrap();
    assert!(
        !server_keys.contains(&key),
        "object visible under the final key"
    );
    assert!(
        r.stderr.contains("offsite"),
        "the log does not name the failed storage: {}",
        r.stderr
    );
}

#[test]
fn s3_down_at_start_fails_that_storage_only() {
    let db = mariadb();
    let name = db.create_shop("s3down", 200);
    let env = Env::new();
    let server = S3::private(&env.path("s3"));
    let bucket = server.bucket("down");
    two_storage_config(&env, &server, &bucket, "", "zstd");
    server.kill();
    let r = env.run(&["backup", "--type", "daily", "--db", &name]);
    assert_fault(&env, &r, &server.keys(&bucket), "cannot reach");
    assert!(
        r.stderr.contains("retrying"),
        "a connection failure is transient and retried: {}",
        r.stderr
    );
}

#[test]
fn s3_killed_mid_upload_leaves_no_object_and_the_local_copy() {
    let db = mariadb();
    let name = db.create_shop("s3kill", 420_000);
    let env = Env::new();
    let server = S3::private(&env.path("s3"));
    let bucket = server.bucket("kill");
    two_storage_config(&env, &server, &bucket, "", "none");
    let mut child = env.spawn(&["-v", "backup", "--type", "daily", "--db", &name]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.open_uploads().iter().any(|f| f.contains(".part-")) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let r = Run::from(child.wait_with_output().unwrap());
            panic!(
                "the upload never started (uploads: {:?}):\n{}",
                server.open_uploads(),
                r.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let r = Run::from(child.wait_with_output().unwrap());
    assert_fault(&env, &r, &server.keys(&bucket), "offsite");
}

#[test]
fn wrong_secret_key_fails_at_once_naming_the_fix() {
    let db = mariadb();
    let name = db.create_shop("s3key", 100);
    let server = s3();
    let bucket = server.bucket("badkey");
    let env = Env::new();
    two_storage_config(&env, server, &bucket, "", "zstd");
    env.edit_config(&server.secret_key(), "not-the-secret");
    let r = env.run(&["backup", "--type", "daily", "--db", &name]);
    assert_fault(&env, &r, &server.keys(&bucket), "secret key does not match");
    assert!(
        !r.stderr.contains("retrying"),
        "a permanent failure must not be retried: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("not-the-secret"), "secret in the log");
}

#[test]
fn missing_bucket_fails_at_once_naming_bucket_and_endpoint() {
    let db = mariadb();
    let name = db.create_shop("s3nobucket", 100);
    let server = s3();
    let env = Env::new();
    let missing = format!("no-such-bucket-{:08x}", fastrand::u32(..));
    two_storage_config(&env, server, &missing, "", "zstd");
    let r = env.run(&["backup", "--type", "daily", "--db", &name]);
    assert_fault(&env, &r, &[], &format!("bucket '{missing}' does not exist"));
    assert!(
        !server.dir.join("data").join(&missing).exists(),
        "the upload went ahead"
    );
    let remote = env.list(&["--storage", "offsite"]).backups.remove(0);
    assert!(remote.error.unwrap().contains(&server.endpoint()));
}

#[test]
fn a_transient_failure_is_retried_visibly_and_ends_in_success() {
    let db = mariadb();
    let name = db.create_shop("s3retry", 200);
    let env = Env::new();
    let server = S3::private(&env.path("s3"));
    let bucket = server.bucket("retry");
    env.write_config(
        "",
        &format!(
            "storage:\n{}retry: {{attempts: 8, max_backoff: 2s}}\nbackup_types:\n  daily:\n    retention: {{keep_last: 7}}\n",
            server.storage_yaml("offsite", &bucket)
        ),
    );
    server.kill();
    let mut child = env
        .cmd()
        .args(["backup", "--type", "daily", "--db", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bring the server back as soon as sqlguard says it is retrying.
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("retrying") {
            server.restart();
            break;
        }
    }
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    assert_eq!(child.wait().unwrap().code(), Some(0), "{log}");
    assert!(log.contains("retrying in"), "{log}");
    let rec = env.list(&[]).backups.remove(0);
    assert_eq!(rec.status, "success");
    assert!(server.keys(&bucket).contains(rec.key.as_ref().unwrap()));
}

/// An https endpoint in front of an S3 server: stunnel (Debian's stunnel4) with a throwaway
/// self-signed certificate for 127.0.0.1. Stopped when dropped.
struct TlsProxy {
    child: std::process::Child,
    port: u16,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsProxy {
    fn start(backend: u16) -> TlsProxy {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        // A throwaway CA, and a server certificate for 127.0.0.1 signed by it.
        let steps: [&[&str]; 3] = [
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=sqlguard test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "req.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "req.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "cert.pem",
            ],
        ];
        for args in steps {
            let made = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                made.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("stunnel.conf");
        std::fs::write(
            &conf,
            format!(
                "foreground = yes\npid =\n[s3]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend}\ncert = {}\nkey = {}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("stunnel4")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("stunnel4 is installed by scripts/install-deps.sh --test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "stunnel did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsProxy {
            child,
            port,
            ca,
            _dir: dir,
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_endpoints_need_a_trusted_certificate_and_ca_file_provides_one() {
    let db = mariadb();
    // Uncompressed, big enough for a multipart upload: its parts go through sqlguard's own
    // signed requests, not rust-s3's.
    let name = db.create_shop("s3tls", 80_000);
    let server = s3();
    let bucket = server.bucket("tls");
    let proxy = TlsProxy::start(server.port);
    let env = Env::new();
    let config = |ca: &str| {
        format!(
            "storage:\n  offsite:\n    type: s3\n    endpoint: https://127.0.0.1:{}\n    bucket: {bucket}\n    path_style: true\n    access_key_id: {}\n    secret_access_key: {}\n{ca}retry: {{attempts: 2, max_backoff: 1s}}\nbackup_types:\n  manual:\n    compression: {{algorithm: none}}\n    retention: {{keep_last: 7}}\n",
            proxy.port,
            server.access_key(),
            server.secret_key()
        )
    };
    // A self-signed certificate is refused, permanently, with the fix named.
    env.write_config("", &config(""));
    let r = env.run(&["backup", "--db", &name]);
    r.expect(1);
    assert!(
        r.stderr.contains("certificate") && r.stderr.contains("ca_file"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("retrying"),
        "a certificate failure is not transient: {}",
        r.stderr
    );
    assert!(server.keys(&bucket).is_empty());
    // Trusting its CA makes the same endpoint work; the bytes went through TLS (the proxy
    // speaks nothing else).
    env.write_config(
        "",
        &config(&format!("    ca_file: {}\n", proxy.ca.display())),
    );
    let r = env.run(&["-v", "backup", "--db", &name]);
    r.expect(0);
    let parts = r.stderr.matches("uploaded part").count();
    assert!(parts >= 2, "{parts} parts:\n{}", r.stderr);
    let rec = env
        .list(&[])
        .backups
        .into_iter()
        .find(|r| r.status == "success")
        .unwrap();
    assert!(server.keys(&bucket).contains(rec.key.as_ref().unwrap()));
    let path = server.object_path(&bucket, rec.key.as_ref().unwrap());
    assert_eq!(Some(crate::support::sha256_file(&path)), rec.sha256);
}

/// (storage class, server-side encryption) of an object, from a signed HEAD request.
fn head(endpoint: &str, bucket: &str, key: &str) -> (Option<String>, Option<String>) {
    let region = s3::Region::Custom {
        region: "us-east-1".into(),
        endpoint: endpoint.into(),
    };
    let creds = s3::creds::Credentials::new(Some("test"), Some("test"), None, None, None).unwrap();
    let b = s3::Bucket::new(bucket, region, creds)
        .unwrap()
        .with_path_style();
    let (h, status) = b
        .head_object(key)
        .unwrap_or_else(|e| panic!("HEAD {key}: {e}"));
    assert_eq!(status, 200);
    (h.storage_class, h.server_side_encryption)
}

#[test]
fn storage_class_goes_on_backups_and_encryption_on_everything() {
    // moto, because s3s-fs rejects storage classes.
    let db = mariadb();
    let name = db.create_shop("s3class", 50);
    let endpoint = crate::support::moto();
    let bucket = format!("class-{:08x}", fastrand::u32(..));
    assert!(std::process::Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .status()
        .unwrap()
        .success());
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "storage:\n  offsite:\n    type: s3\n    endpoint: {endpoint}\n    bucket: {bucket}\n    path_style: true\n    access_key_id: test\n    secret_access_key: test\n    storage_class: STANDARD_IA\n    sse: AES256\n"
        ),
    );
    env.run(&["backup", "--db", &name]).expect(0);
    let rec = env.list(&[]).backups.remove(0);
    let (class, sse) = head(endpoint, &bucket, rec.key.as_ref().unwrap());
    assert_eq!(
        (class.as_deref(), sse.as_deref()),
        (Some("STANDARD_IA"), Some("AES256"))
    );
    for meta in [
        "main/index/summary.json".to_string(),
        format!("main/index/db/{name}/{}.json", month_of(&rec)),
        rec.manifest_key.clone().unwrap(),
    ] {
        let (class, sse) = head(endpoint, &bucket, &meta);
        assert_ne!(
            class.as_deref(),
            Some("STANDARD_IA"),
            "{meta} got the backups' storage class"
        );
        assert_eq!(sse.as_deref(), Some("AES256"), "{meta} is not encrypted");
    }
}

#[test]
fn a_download_cut_short_is_an_error_not_a_short_file() {
    use std::io::Write;
    let env = Env::new();
    let server = S3::private(&env.path("s3"));
    let bucket = server.bucket("cut");
    let s = storage(&server, &bucket, "");
    let mut w = s.put_stream("srv/big.sql", None).unwrap();
    w.write_all(&vec![42u8; 40 << 20]).unwrap();
    w.commit().unwrap();
    let mut r = s.get("srv/big.sql").unwrap();
    let mut buf = vec![0u8; 1 << 20];
    r.read_exact(&mut buf).unwrap();
    server.kill();
    let mut rest = Vec::new();
    let e = r
        .read_to_end(&mut rest)
        .expect_err("a truncated download read as complete");
    assert!(e.to_string().contains("srv/big.sql"), "{e}");
    assert!(rest.len() < 40 << 20);
}

/// The index partition of a record: the UTC month it started in.
fn month_of(r: &crate::support::Record) -> String {
    r.started_at[..7].to_string()
}

/// tests/fixtures/damaging_proxy.py in front of `server`, flipping one byte in each of the first
/// `damage` part uploads; stopped when dropped.
struct DamagingProxy {
    child: std::process::Child,
    port: u16,
    count_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl DamagingProxy {
    fn start(server: &S3, damage: u32) -> DamagingProxy {
        Self::start_with(server, damage, 0)
    }

    /// Also reads every part upload's body at `slow` bytes per second (0: at full speed).
    fn start_with(server: &S3, damage: u32, slow: u32) -> DamagingProxy {
        let dir = tempfile::tempdir().unwrap();
        let (port_file, count_file) = (dir.path().join("port"), dir.path().join("damaged"));
        let mut child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/damaging_proxy.py"
            ))
            .args([server.port.to_string(), damage.to_string()])
            .args([&port_file, &count_file])
            .arg(slow.to_string())
            .spawn()
            .expect("python3 runs the damaging proxy");
        let port = crate::support::port_from_file(&mut child, &port_file, "the damaging proxy");
        DamagingProxy {
            child,
            port,
            count_file,
            _dir: dir,
        }
    }

    /// The part uploads it damaged so far.
    fn damaged(&self) -> usize {
        std::fs::read_to_string(&self.count_file)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for DamagingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A part damaged on its way to the server is refused there, because the request's signature
/// covers the part's SHA-256; it is sent again, and the object that lands is the one written.
/// Without a retry left, the upload fails and leaves nothing.
#[test]
fn a_part_damaged_in_transit_is_refused_and_sent_again() {
    let server = s3();
    let bucket = server.bucket("damaged");
    let data: Vec<u8> = {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..(20 << 20) + 5).map(|_| rng.u8(..)).collect()
    };
    let through = |proxy: &DamagingProxy, attempts: u32| {
        let mut s = settings(server, &bucket, "");
        s.endpoint = format!("http://127.0.0.1:{}", proxy.port);
        let retry = RetrySettings {
            attempts,
            max_backoff: sqlguard::duration::HumanDuration(1),
        };
        let locks = tempfile::tempdir().unwrap().keep();
        S3Storage::new("s3", &s, retry, locks, Ui::silent()).unwrap()
    };
    let write = |s: &S3Storage, key: &str| {
        let mut w = s.put_stream(key, None).unwrap();
        for piece in data.chunks(1 << 20) {
            std::io::Write::write_all(&mut w, piece).unwrap();
        }
        w.commit()
    };

    let proxy = DamagingProxy::start(server, 1);
    let s = through(&proxy, 3);
    // An encoded name, as odd database names give: the signed path must be the one sent.
    let key = format!(
        "{}/daily/sent-again.sql",
        sqlguard::layout::database_component("my db Ü")
    );
    write(&s, &key).unwrap();
    assert_eq!(proxy.damaged(), 1, "the proxy damaged no part");
    let mut back = Vec::new();
    s.get(&key).unwrap().read_to_end(&mut back).unwrap();
    assert!(back == data, "the object differs from what was written");

    let proxy = DamagingProxy::start(server, 1);
    let s = through(&proxy, 1);
    let e = write(&s, "db/daily/refused.sql").unwrap_err().to_string();
    assert_eq!(proxy.damaged(), 1, "the proxy damaged no part");
    assert!(e.contains("uploading part"), "{e}");
    assert_eq!(e.matches("storage 's3'").count(), 1, "named twice: {e}");
    assert!(s.stat("db/daily/refused.sql").unwrap().is_none());
    assert!(
        s.orphans("", chrono::Utc::now() + chrono::Duration::hours(1))
            .unwrap()
            .is_empty(),
        "the failed upload was left open"
    );
}

/// A thread limit that refuses the part upload threads fails the S3 copy alone, with a message
/// that names the limit, and leaves no object and no open multipart upload; the local copy of
/// the same run is stored and recorded.
#[test]
fn part_threads_refused_fail_the_s3_copy_alone() {
    let db = mariadb();
    // ~10 MiB of dump (random bytes, hex): an upload in two parts.
    let name = db.create_db("s3thr");
    db.sql(
        Some(&name),
        "CREATE TABLE t (b BLOB); INSERT INTO t SELECT RANDOM_BYTES(1024) FROM seq_1_to_5000",
    );
    let server = s3();
    let bucket = server.bucket("threads");
    let env = Env::new();
    two_storage_config(&env, server, &bucket, "", "none");
    let r = env.run_with(
        &[("SQLGUARD_TEST_REFUSE_THREADS", "s3-part")],
        &["backup", "--type", "daily", "--db", &name],
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_fault(
        &env,
        &r,
        &server.keys(&bucket),
        "cannot start a thread (s3-part)",
    );
    let open = storage(server, &bucket, "")
        .orphans("", chrono::Utc::now() + chrono::Duration::hours(1))
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
}

/// A signal while parts go up over a slow link ends the run promptly (each part's sending
/// stops within a slice, not at its deadline) with exit 130: the S3 copy is recorded as failed,
/// nothing is under its key, and the local copy of the same run is kept.
#[test]
fn a_signal_during_a_slow_part_upload_ends_the_run_promptly() {
    // 8 MiB at 64 KiB/s: about two minutes per part; ~10 MiB of dump, two parts.
    signal_during_upload(64 << 10, 5_000, 2);
}

/// The same against a server that stopped reading (every part stuck in a socket write, the
/// writer waiting for a free upload thread): the run still ends at once, not at the parts'
/// deadline.
#[test]
fn a_signal_while_the_server_reads_nothing_ends_the_run_promptly() {
    // ~40 MiB of dump: three parts stuck in flight and the next waiting for a thread.
    signal_during_upload(1, 20_000, 3);
}

/// Backs up `rows` KiB of random bytes (hex: twice that) to local and S3 storage through a relay
/// that reads part bodies at `slow` bytes/s, signals the run once `parts` part uploads began.
fn signal_during_upload(slow: u32, rows: u32, parts: usize) {
    let db = mariadb();
    let name = db.create_db("s3slow");
    db.sql(
        Some(&name),
        &format!(
            "CREATE TABLE t (b BLOB); INSERT INTO t SELECT RANDOM_BYTES(1024) FROM seq_1_to_{rows}"
        ),
    );
    let server = s3();
    let bucket = server.bucket("slow");
    let proxy = DamagingProxy::start_with(server, 0, slow);
    let env = Env::new();
    two_storage_config(&env, server, &bucket, "", "none");
    env.edit_config(
        &server.endpoint(),
        &format!("http://127.0.0.1:{}", proxy.port),
    );
    let mut child = env.spawn(&["-v", "backup", "--type", "daily", "--db", &name]);
    // With two parts, the second (last) goes up once the dump has ended and the local copy
    // has landed; with more, the dump is over once the writer waits for a thread.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&proxy.count_file)
        .map(|s| s.matches("slow PUT").count() < parts)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the parts did not start");
        assert!(child.try_wait().unwrap().is_none(), "sqlguard ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    let took = signalled.elapsed();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        took < Duration::from_secs(30),
        "the run took {took:?} to end after the signal:\n{}",
        r.stderr
    );
    let list = env.list(&[]);
    let remote = by_storage(&list.backups, "offsite");
    assert_eq!(remote.status, "failed", "{remote:?}");
    let error = remote.error.clone().unwrap_or_default();
    assert!(
        error.contains("signal") && !error.contains("is the endpoint right"),
        "{error}"
    );
    if let Some(local) = list
        .backups
        .iter()
        .find(|b| b.storage == "local" && b.status == "success")
    {
        let key = local.key.clone().unwrap();
        assert!(
            !server.keys(&bucket).contains(&key),
            "object under the final key"
        );
    }
    if parts == 2 {
        assert_eq!(by_storage(&list.backups, "local").status, "success");
    }
}

/// tests/fixtures/s3_faults.py in front of `server`: answers one kind of request wrongly, as a
/// buggy server or proxy would; stopped when dropped.
struct FaultyS3 {
    child: std::process::Child,
    port: u16,
    record: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl FaultyS3 {
    fn start(server: &S3, fault: &str) -> FaultyS3 {
        let dir = tempfile::tempdir().unwrap();
        let (port_file, record) = (dir.path().join("port"), dir.path().join("requests.jsonl"));
        let mut child = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/s3_faults.py"
            ))
            .args(["--upstream", &format!("127.0.0.1:{}", server.port)])
            .args(["--fault", fault])
            .arg("--record")
            .arg(&record)
            .arg("--port-file")
            .arg(&port_file)
            .spawn()
            .expect("python3 runs the S3 fault proxy");
        let port = crate::support::port_from_file(&mut child, &port_file, "the S3 fault proxy");
        FaultyS3 {
            child,
            port,
            record,
            _dir: dir,
        }
    }

    /// A storage on `bucket` (under `prefix`) through the proxy.
    fn storage(&self, server: &S3, bucket: &str, prefix: &str) -> S3Storage {
        let mut s = settings(server, bucket, prefix);
        s.endpoint = format!("http://127.0.0.1:{}", self.port);
        let retry = RetrySettings {
            attempts: 1,
            max_backoff: sqlguard::duration::HumanDuration(1),
        };
        let locks = tempfile::tempdir().unwrap().keep();
        S3Storage::new("s3", &s, retry, locks, Ui::silent()).unwrap()
    }

    /// Every request so far, as `METHOD path`.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!(
                    "{} {}",
                    v["method"].as_str().unwrap(),
                    v["path"].as_str().unwrap()
                )
            })
            .collect()
    }
}

impl Drop for FaultyS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A listing whose server repeats its continuation token, or says it goes on with no token,
/// fails at once with what the server did: it neither loops for ever (as following the token
/// would, past signals) nor passes for the whole listing.
#[test]
fn a_listing_that_would_never_end_or_stops_short_fails() {
    let server = s3();
    let bucket = server.bucket("list-faults");
    for (fault, says) in [
        (
            "list-repeat-token",
            "a continuation token it had sent before",
        ),
        ("list-no-token", "sent no continuation token"),
    ] {
        let proxy = FaultyS3::start(server, fault);
        let s = proxy.storage(server, &bucket, "");
        let started = Instant::now();
        let e = s.list("main/").unwrap_err().to_string();
        assert!(e.contains(says), "{fault}: {e}");
        assert!(started.elapsed() < Duration::from_secs(30), "{fault}");
        let lists = proxy.requests().len();
        assert!((1..=3).contains(&lists), "{fault}: {lists} requests");
    }

    // The real binary: `list` reads the index by listing it, and says so instead of hanging.
    let db = mariadb();
    let name = db.create_shop("listfault", 5);
    let env = Env::new();
    let proxy = FaultyS3::start(server, "list-repeat-token");
    let mut yaml = server.storage_yaml("store", &bucket);
    yaml = yaml.replace(
        &server.endpoint(),
        &format!("http://127.0.0.1:{}", proxy.port),
    );
    env.write_config("", &format!("storage:\n{yaml}"));
    let r = env.run(&["list", "--db", &name]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("a continuation token it had sent before"),
        "{}",
        r.stderr
    );
}

/// A batch delete answered 200 with a result that names no key confirms nothing: every key still
/// there comes back failed, and prune would keep their records; one gone counts as deleted.
#[test]
fn a_batch_delete_that_confirms_nothing_deletes_nothing() {
    let server = s3();
    let bucket = server.bucket("delete-faults");
    let direct = storage(server, &bucket, "");
    let keys: Vec<String> = (0..3)
        .map(|i| format!("main/shop/daily/k{i}.sql"))
        .collect();
    for k in &keys {
        direct.put_bytes(k, b"x").unwrap();
    }
    let proxy = FaultyS3::start(server, "delete-confirms-nothing");
    let failed = proxy
        .storage(server, &bucket, "")
        .delete_many(&keys)
        .unwrap();
    let mut named: Vec<&String> = failed.iter().map(|(k, _)| k).collect();
    named.sort();
    assert_eq!(named, keys.iter().collect::<Vec<_>>());
    assert!(failed[0].1.to_string().contains("and it is still there"));
    // One that did the work but confirmed none of it (as if asked for quiet mode): each key
    // is looked up, and the ones gone count as deleted.
    let done = FaultyS3::start(server, "delete-unconfirmed");
    assert!(done
        .storage(server, &bucket, "")
        .delete_many(&keys[..2])
        .unwrap()
        .is_empty());
    assert!(direct.stat(&keys[0]).unwrap().is_none());
    assert!(direct.stat(&keys[2]).unwrap().is_some());
    // Through the server itself, a batch delete confirms each key (missing ones too).
    let mut again = keys.clone();
    again.push("main/shop/daily/never-was.sql".into());
    assert!(direct.delete_many(&again).unwrap().is_empty());
    for k in &keys {
        assert!(direct.stat(k).unwrap().is_none(), "{k} stayed");
    }
}

/// Only sqlguard's own incomplete uploads, under the prefix asked for, are orphans to abort:
/// uploads of other names or outside it are none of its business.
#[test]
fn only_our_own_incomplete_uploads_are_orphans() {
    let server = s3();
    let bucket = server.bucket("upload-faults");
    let proxy = FaultyS3::start(server, "foreign-uploads");
    let s = proxy.storage(server, &bucket, "");
    let found = s
        .orphans("main/", chrono::Utc::now())
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect::<Vec<_>>();
    assert_eq!(
        found,
        vec!["main/shop/daily/20250101T000000Z_00000002.sql.zst".to_string()]
    );
}

/// Two spellings of one endpoint (`127.0.0.1` and `localhost`, a trailing slash) reach one
/// bucket, so they take one index lock: an update under one waits for the other's.
#[test]
fn one_bucket_reached_by_two_spellings_takes_one_lock() {
    let server = s3();
    let bucket = server.bucket("lock-spelling");
    let locks = tempfile::tempdir().unwrap();
    let at = |endpoint: String| {
        let mut s = settings(server, &bucket, "p");
        s.endpoint = endpoint;
        S3Storage::new(
            "s3",
            &s,
            RetrySettings::default(),
            locks.path().to_path_buf(),
            Ui::silent(),
        )
        .unwrap()
    };
    let a = at(server.endpoint());
    let b = at(format!("http://localhost:{}/", server.port));
    let held = a.lock("index-main").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let got = b.lock("index-main").map(|_| ());
        let _ = tx.send(got);
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "the other spelling took the lock while it was held"
    );
    drop(held);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the lock is taken once released")
        .unwrap();
}
