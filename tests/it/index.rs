//! The index across versions and under load: an index written by sqlguard 0.1 (the legacy
//! layout) is read as it is and migrated by the first write.

use crate::support::{mariadb, Env};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy-v1");

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn list_json(env: &Env) -> serde_json::Value {
    let r = env.run(&["list", "--json"]);
    r.expect(0);
    serde_json::from_str(&r.stdout).unwrap()
}

/// Issue 12: an index that sqlguard 0.1.0 wrote (`tests/fixtures/legacy-v1`: its storage after
/// three backups, a verification and a failed run, and its `list --json` then) is listed exactly
/// as 0.1.0 listed it, is not touched by reading, and is migrated by the next backup: the old
/// file is kept, a stub that older binaries refuse stands in its place, nothing is lost, and the
/// migrated copies still verify.
#[test]
fn an_index_written_by_0_1_is_read_then_migrated() {
    let db = mariadb();
    let fresh = db.create_shop("migrate", 5);
    let env = Env::new();
    env.write_local_config("");
    copy_dir(
        &std::path::Path::new(FIXTURE).join("storage"),
        &env.storage(),
    );
    let legacy = std::fs::read(env.storage().join("main/index.json")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE}/list.json")).unwrap()).unwrap();
    assert_eq!(
        list_json(&env),
        expected,
        "list --json changed for a 0.1 index"
    );
    let r = env.run(&["report", "--json"]);
    r.expect(0);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let health: Vec<(String, String)> = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["database"].to_string(), d["health"].to_string()))
        .collect();
    assert!(
        health.contains(&("\"legacy_crm\"".into(), "\"failing\"".into())),
        "{health:?}"
    );
    assert_eq!(
        std::fs::read(env.storage().join("main/index.json")).unwrap(),
        legacy,
        "reading must not migrate"
    );
    assert!(!env.storage().join("main/index").exists());

    env.run(&["backup", "--db", &fresh]).expect(0);
    let stub: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.storage().join("main/index.json")).unwrap())
            .unwrap();
    assert_eq!(stub["schema_version"], 2, "{stub}");
    assert!(stub.get("backups").is_none(), "{stub}");
    let kept: Vec<String> = env
        .stored_files()
        .into_iter()
        .filter(|f| f.starts_with("main/index.json.bak-"))
        .collect();
    assert_eq!(kept.len(), 1, "{:?}", env.stored_files());
    assert_eq!(std::fs::read(env.storage().join(&kept[0])).unwrap(), legacy);
    for db in ["legacy_shop", "legacy_crm", fresh.as_str()] {
        assert!(env.db_index(db).exists(), "{db}'s index file");
    }

    let after = list_json(&env);
    let after = after["backups"].as_array().unwrap();
    assert_eq!(after.len(), 5);
    assert_eq!(after[0]["database"], fresh.as_str());
    assert_eq!(
        &after[1..],
        expected["backups"].as_array().unwrap().as_slice(),
        "the migrated records are the 0.1 records"
    );
    for old in expected["backups"].as_array().unwrap() {
        if old["status"] == "success" {
            env.run(&["verify", old["id"].as_str().unwrap()]).expect(0);
        }
    }
    let verified = list_json(&env);
    let n = verified["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verification"]["ok"] == true)
        .count();
    assert_eq!(n, 3, "{verified}");
}
