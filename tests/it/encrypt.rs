//! Issue 15: client-side encryption with age, against the real MariaDB and Debian's `age` CLI:
//! sqlguard's objects decrypt with `age -d`, the CLI's files restore with `restore --file`,
//! verify works without a key, and nothing unauthenticated reaches a database.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::support::{mariadb, sha256_file, write_script, Env, Record};

/// The age CLI must be installed (`scripts/install-deps.sh --test`): a missing tool fails the
/// test, it never skips.
pub(crate) fn require_age() {
    for tool in ["age", "age-keygen"] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "`{tool}` is missing: run scripts/install-deps.sh --test (Debian package `age`)"
        );
    }
}

/// A new key pair from `age-keygen`: the identity file (0600) and its public key.
pub(crate) fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (
        path,
        String::from_utf8(public.stdout).unwrap().trim().to_string(),
    )
}

/// Runs `sh -c script`, returning stdout; panics with stderr on failure.
fn sh(script: &str) -> Vec<u8> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn config(env: &Env, encryption: &str) {
    env.write_config(
        "",
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\nencryption:\n{encryption}"
        ),
    );
}

fn database_exists(name: &str) -> bool {
    !mariadb()
        .sql(None, &format!("SHOW DATABASES LIKE '{name}'"))
        .trim()
        .is_empty()
}

#[derive(Debug, Deserialize)]
struct VerifyDoc {
    ok: bool,
    verified: Vec<Verified>,
}

#[derive(Debug, Deserialize)]
struct Verified {
    ok: bool,
    restore_tested: bool,
    checked: Checked,
}

#[derive(Debug, Deserialize)]
struct Checked {
    raw_bytes: u64,
    decrypted: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct CheckDoc {
    ok: bool,
    checks: Vec<CheckRow>,
}

#[derive(Debug, Deserialize)]
struct CheckRow {
    kind: String,
    ok: bool,
    detail: String,
}

/// Issue 15: sqlguard encrypts after compression, records the stored (encrypted) bytes' size
/// and SHA-256 and the `.age` suffix; the stock `age -d | zstd -d | mariadb` restores it to the
/// same CHECKSUM TABLE. Without a key, verify proves the object by its hash and restore says
/// exactly what is missing; with one, verify decrypts, restore, `verify --restore-test`,
/// `fetch --decrypt/--decompress` and `check` work.
#[test]
fn sqlguard_encrypts_and_the_age_cli_restores_it() {
    require_age();
    let db = mariadb();
    let name = db.create_shop("enc", 2000);
    let env = Env::new();
    let (key, public) = keygen(env.dir.path(), "key.txt");
    config(&env, &format!("  age_recipients: [\"{public}\"]\n"));
    let r = env.run(&["backup", "--db", &name]);
    r.expect(0);
    assert!(
        r.stderr.contains("encrypted to 1 age recipient"),
        "{}",
        r.stderr
    );
    let rec: Record = env.list(&["--db", &name]).backups.remove(0);
    let key_name = rec.key.clone().unwrap();
    assert!(key_name.ends_with(".sql.zst.age"), "{key_name}");
    let enc = rec
        .encryption
        .clone()
        .expect("the record says it is encrypted");
    assert_eq!(enc["format"], "age");
    assert_eq!(enc["recipients"][0], public.as_str());
    let object = env.storage().join(&key_name);
    assert_eq!(
        Some(sha256_file(&object)),
        rec.sha256,
        "SHA-256 of the stored bytes"
    );
    assert_eq!(
        std::fs::metadata(&object).unwrap().len(),
        rec.compressed_bytes
    );
    let stored = std::fs::read(&object).unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));
    let manifest =
        std::fs::read_to_string(env.storage().join(rec.manifest_key.as_ref().unwrap())).unwrap();
    assert!(manifest.contains("\"encryption\""), "{manifest}");
    // No plaintext anywhere in the storage but the index and manifests' names and sizes.
    for f in env.stored_files() {
        let bytes = std::fs::read(env.storage().join(&f)).unwrap();
        assert!(
            !bytes.windows(11).any(|w| w == b"INSERT INTO"),
            "{f} holds SQL"
        );
    }

    // The stock tools restore it.
    let sql = sh(&format!(
        "age -d -i '{}' '{}' | zstd -dc",
        key.display(),
        object.display()
    ));
    assert_eq!(sql.len() as u64, rec.raw_bytes);
    let by_hand = db.create_db(&format!("{name}_cli"));
    db.restore(&by_hand, &sql);
    assert_eq!(db.checksums(&by_hand), db.checksums(&name));

    // Without an identity: verify checks the hash, restore says what is missing, nothing else.
    let r = env.run(&["--json", "verify", &rec.id]);
    r.expect(0);
    let doc: VerifyDoc = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc.ok && doc.verified[0].ok);
    assert_eq!(doc.verified[0].checked.decrypted, Some(false));
    assert!(r.stderr.contains("intact as stored"), "{}", r.stderr);
    let target = format!("{name}_nokey");
    let r = env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        &target,
    ]);
    r.expect(2);
    assert!(
        r.stderr.contains("age_identity_file") && r.stderr.contains("SQLGUARD_AGE_IDENTITY_FILE"),
        "{}",
        r.stderr
    );
    assert!(!database_exists(&target));
    // A restore test cannot run here: refused before anything is tested or recorded (a good
    // backup must not be marked failed for a missing key).
    let r = env.run(&["verify", &rec.id, "--restore-test"]);
    r.expect(2);
    assert!(r.stderr.contains("cannot restore-test"), "{}", r.stderr);
    let again = env.list(&["--db", &name]).backups.remove(0);
    let v = again.verification.expect("the plain verify was recorded");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["restore_tested"], false, "{v}");
    let r = env.run(&["fetch", &rec.id, "--decompress", "-o", "x.sql"]);
    r.expect(2);
    assert!(!env.path("x.sql").exists());
    // The stored bytes need no key.
    env.run(&["fetch", &rec.id, "-o", "stored.sql.zst.age"])
        .expect(0);
    assert_eq!(
        std::fs::read(env.path("stored.sql.zst.age")).unwrap(),
        stored
    );
    let r = env.run(&["--json", "check", "--server", "main"]);
    r.expect(0);
    let doc: CheckDoc = serde_json::from_str(&r.stdout).unwrap();
    let row = doc.checks.iter().find(|c| c.kind == "encryption").unwrap();
    assert!(row.ok && row.detail.contains("no identity"), "{row:?}");

    // With the identity: everything works, transparently.
    config(
        &env,
        &format!(
            "  age_recipients: [\"{public}\"]\n  age_identity_file: {}\n",
            key.display()
        ),
    );
    let r = env.run(&["--json", "verify", &rec.id, "--restore-test"]);
    r.expect(0);
    let doc: VerifyDoc = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc.verified[0].restore_tested && doc.verified[0].ok);
    let r = env.run(&["--json", "verify", &rec.id]);
    let doc: VerifyDoc = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc.verified[0].checked.decrypted, Some(true));
    assert_eq!(doc.verified[0].checked.raw_bytes, rec.raw_bytes);
    let target = format!("{name}_key");
    env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        &target,
    ])
    .expect(0);
    assert_eq!(db.checksums(&target), db.checksums(&name));
    env.run(&["fetch", &rec.id, "--decrypt", "-o", "d.sql.zst"])
        .expect(0);
    let sql2 = sh(&format!("zstd -dc '{}'", env.path("d.sql.zst").display()));
    assert_eq!(sql2, sql);
    env.run(&["fetch", &rec.id, "--decompress", "-o", "d.sql"])
        .expect(0);
    assert_eq!(std::fs::read(env.path("d.sql")).unwrap(), sql);
    let out = env
        .cmd()
        .args(["fetch", &rec.id, "--decompress"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, sql);
    let r = env.run(&["--json", "check", "--server", "main"]);
    r.expect(0);
    let doc: CheckDoc = serde_json::from_str(&r.stdout).unwrap();
    let row = doc.checks.iter().find(|c| c.kind == "encryption").unwrap();
    assert!(
        row.ok && row.detail.contains(&rec.id) && row.detail.contains("decrypts"),
        "{row:?}"
    );
    assert!(doc.ok);
}

/// Issue 15: a file the age CLI encrypted, to several recipients, which no index knows, comes
/// in through `restore --file` (binary and armored, compressed or not) and equals the source;
/// key rotation: an identity file with the old and the new key restores backups of both.
#[test]
fn files_the_age_cli_encrypted_restore_with_restore_file_and_keys_rotate() {
    require_age();
    let db = mariadb();
    let name = db.create_shop("encf", 1000);
    let env = Env::new();
    let (old_key, old) = keygen(env.dir.path(), "old.txt");
    let (new_key, new) = keygen(env.dir.path(), "new.txt");
    let (_, other) = keygen(env.dir.path(), "other.txt");
    let dump = format!(
        "mariadb-dump --defaults-file='{}' --single-transaction --routines --triggers --events --hex-blob -- '{name}'",
        db.dir.join("client.cnf").display()
    );
    let file = env.path("cli.sql.zst.age");
    sh(&format!(
        "{dump} | zstd -q | age -r {other} -r {new} -o '{}'",
        file.display()
    ));
    let armored = env.path("cli.sql.age");
    sh(&format!(
        "{dump} | age -a -r {new} -o '{}'",
        armored.display()
    ));
    // Both keys in one file: the old one stays for older backups.
    let both = env.path("both.txt");
    std::fs::write(
        &both,
        format!(
            "{}\n{}",
            std::fs::read_to_string(&old_key).unwrap(),
            std::fs::read_to_string(&new_key).unwrap()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&both, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    config(
        &env,
        &format!(
            "  age_recipients: [\"{old}\"]\n  age_identity_file: {}\n",
            both.display()
        ),
    );
    for (f, suffix) in [(&file, "zst"), (&armored, "arm")] {
        let target = format!("{name}_{suffix}");
        let r = env.run(&[
            "restore",
            "--file",
            f.to_str().unwrap(),
            "--to-server",
            "main",
            "--to-database",
            &target,
        ]);
        r.expect(0);
        assert!(r.stderr.contains("proved whole"), "{}", r.stderr);
        assert_eq!(db.checksums(&target), db.checksums(&name));
    }
    // Rotation: a backup to the old key, then the config moves to the new one.
    env.run(&["backup", "--db", &name]).expect(0);
    config(
        &env,
        &format!(
            "  age_recipients: [\"{new}\"]\n  age_identity_file: {}\n",
            both.display()
        ),
    );
    env.run(&["backup", "--db", &name]).expect(0);
    let records = env.list(&["--db", &name]).backups;
    assert_eq!(records.len(), 2);
    for (rec, key) in records.iter().zip([&new, &old]) {
        assert_eq!(
            rec.encryption.as_ref().unwrap()["recipients"][0],
            key.as_str()
        );
        let target = format!("{name}_{}", &rec.id[rec.id.len() - 8..]);
        env.run(&[
            "restore",
            &rec.id,
            "--to-server",
            "main",
            "--to-database",
            &target,
        ])
        .expect(0);
        assert_eq!(db.checksums(&target), db.checksums(&name));
    }
    // An identity file with the new key only: the old backup names the key it needs.
    config(
        &env,
        &format!(
            "  age_recipients: [\"{new}\"]\n  age_identity_file: {}\n",
            new_key.display()
        ),
    );
    let r = env.run(&[
        "restore",
        &records[1].id,
        "--to-server",
        "main",
        "--to-database",
        "never_made",
    ]);
    r.expect(2);
    assert!(
        r.stderr.contains(&old) && r.stderr.contains("keep old keys"),
        "{}",
        r.stderr
    );
    // verify still proves it as stored, and says why it could not look inside.
    let r = env.run(&["verify", &records[1].id]);
    r.expect(0);
    assert!(r.stderr.contains("checked as stored only"), "{}", r.stderr);
}

/// Issue 15: a truncated file, a flipped byte, a wrong identity and a missing one each fail
/// with a clear message, and no database is created or written; a stored object altered in
/// place is refused by its SHA-256 before it is decrypted.
#[test]
fn damaged_or_foreign_ciphertext_never_reaches_a_database() {
    require_age();
    let db = mariadb();
    let name = db.create_shop("encbad", 300);
    let env = Env::new();
    let (key, public) = keygen(env.dir.path(), "key.txt");
    let (wrong, _) = keygen(env.dir.path(), "wrong.txt");
    let good = env.path("good.sql.zst.age");
    sh(&format!(
        "mariadb-dump --defaults-file='{}' --single-transaction -- '{name}' | zstd -q | age -r {public} -o '{}'",
        db.dir.join("client.cnf").display(),
        good.display()
    ));
    let bytes = std::fs::read(&good).unwrap();
    let truncated = env.path("truncated.age");
    std::fs::write(&truncated, &bytes[..bytes.len() - 500]).unwrap();
    let flipped = env.path("flipped.age");
    let mut f = bytes.clone();
    let mid = f.len() / 2;
    f[mid] ^= 0x20;
    std::fs::write(&flipped, &f).unwrap();
    let restore_file = |env: &Env, file: &Path, target: &str| {
        env.run(&[
            "restore",
            "--file",
            file.to_str().unwrap(),
            "--to-server",
            "main",
            "--to-database",
            target,
        ])
    };
    config(&env, &format!("  age_recipients: [\"{public}\"]\n"));
    let r = restore_file(&env, &good, "enc_never_1");
    r.expect(2);
    assert!(r.stderr.contains("age_identity_file"), "{}", r.stderr);
    config(
        &env,
        &format!(
            "  age_recipients: [\"{public}\"]\n  age_identity_file: {}\n",
            key.display()
        ),
    );
    for (file, words, target) in [
        (&truncated, "cut short", "enc_never_2"),
        (&flipped, "does not authenticate", "enc_never_3"),
    ] {
        let r = restore_file(&env, file, target);
        r.expect(1);
        assert!(r.stderr.contains(words), "{words}: {}", r.stderr);
        assert!(r.stderr.contains("nothing was restored"), "{}", r.stderr);
        assert!(!database_exists(target), "{target} was created");
    }
    config(
        &env,
        &format!(
            "  age_recipients: [\"{public}\"]\n  age_identity_file: {}\n",
            wrong.display()
        ),
    );
    let r = restore_file(&env, &good, "enc_never_4");
    r.expect(1);
    assert!(
        r.stderr.contains("is a recipient of this file"),
        "{}",
        r.stderr
    );
    assert!(!database_exists("enc_never_4"));

    // A stored object changed in place (same size): refused before decryption, by its hash.
    config(
        &env,
        &format!(
            "  age_recipients: [\"{public}\"]\n  age_identity_file: {}\n",
            key.display()
        ),
    );
    env.run(&["backup", "--db", &name]).expect(0);
    let rec = env.list(&["--db", &name]).backups.remove(0);
    let object = env.storage().join(rec.key.as_ref().unwrap());
    let mut stored = std::fs::read(&object).unwrap();
    let n = stored.len() - 100;
    stored[n] ^= 1;
    std::fs::write(&object, &stored).unwrap();
    let r = env.run(&[
        "restore",
        &rec.id,
        "--to-server",
        "main",
        "--to-database",
        "enc_never_5",
    ]);
    r.expect(1);
    assert!(r.stderr.contains("SHA-256"), "{}", r.stderr);
    assert!(!database_exists("enc_never_5"));
    let r = env.run(&["verify", &rec.id]);
    r.expect(1);
    assert!(r.stderr.contains("SHA-256"), "{}", r.stderr);
}

/// Issue 15: the identity is a private key: it never appears on a command line (`ps`), in a
/// log, in a hook's environment or in the client tool's; the config only holds its path.
#[test]
fn the_identity_never_reaches_argv_logs_or_hook_environments() {
    require_age();
    let db = mariadb();
    let name = db.create_shop("encsec", 200);
    let env = Env::new();
    let (key, public) = keygen(env.dir.path(), "key.txt");
    let secret = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let seen = env.path("seen");
    let hook = env.path("hook.sh");
    write_script(
        &hook,
        &format!(
            "{{ env; ps -eo args; cat /proc/$PPID/environ | tr '\\0' '\\n'; }} >> '{}' 2>&1; exit 0",
            seen.display()
        ),
    );
    let client = env.path("client.sh");
    write_script(
        &client,
        &format!(
            "{{ echo \"$@\"; env; ps -eo args; }} >> '{}' 2>&1\nexec mariadb \"$@\"",
            seen.display()
        ),
    );
    env.write_config(
        &format!("client_tool: {}", client.display()),
        &format!(
            "storage:\n  local:\n    type: local\n    path: {{storage}}\nencryption:\n  age_recipients: [\"{public}\"]\n  age_identity_file: {}\nhooks:\n  verify:\n    before: [{h}]\n    finally: [{h}]\n  backup:\n    finally: [{h}]\n",
            key.display(),
            h = hook.display()
        ),
    );
    let mut logs = String::new();
    for args in [
        vec!["-v", "backup", "--db", &name],
        vec!["-v", "verify", "--latest", "--db", &name, "--restore-test"],
        vec!["-v", "config", "show"],
        vec!["-v", "check", "--server", "main"],
    ] {
        let r = env.run(&args);
        r.expect(0);
        logs.push_str(&r.stdout);
        logs.push_str(&r.stderr);
    }
    let seen = std::fs::read_to_string(&seen).unwrap();
    assert!(seen.contains("--sandbox"), "the client wrapper ran: {seen}");
    assert!(
        seen.contains("SQLGUARD_HOOK=finally"),
        "the hooks ran: {seen}"
    );
    for (what, text) in [("logs", &logs), ("argv and environments", &seen)] {
        assert!(!text.contains(&secret), "the identity is in the {what}");
        assert!(
            !text.contains("AGE-SECRET-KEY"),
            "an identity is in the {what}"
        );
    }
    assert!(
        logs.contains(&format!("age_identity_file: {}", key.display())),
        "{logs}"
    );
}
