//! The behaviour suite every [`Storage`] implementation must pass: one function per point of the
//! trait's contract, and [`storage_behaviour_tests!`](crate::storage_behaviour_tests) to turn
//! them into one named test each for a backend, so that a failure names the broken promise.
//! Used by the unit tests of each implementation and by the integration tests against a real
//! S3-compatible server. Test code: only built with the `testkit` feature or under test.

use std::io::{Read, Write};

use chrono::Utc;

use super::{Storage, StorageError};

/// A storage under test, empty below `base` (which ends with `/`), and whatever must live as
/// long as it (a temp directory, a bucket).
pub struct Subject {
    pub storage: Box<dyn Storage>,
    pub base: String,
    pub keep: Box<dyn std::any::Any>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subject({:?}, {})", self.storage, self.base)
    }
}

impl Subject {
    fn k(&self, x: &str) -> String {
        format!("{}{x}", self.base)
    }
}

fn read_all(s: &dyn Storage, key: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    s.get(key).unwrap().read_to_end(&mut buf).unwrap();
    buf
}

/// `preflight` succeeds on a usable storage.
pub fn preflight_succeeds(t: Subject) {
    t.storage.preflight().unwrap();
}

/// `put_stream` writes atomically: nothing under the key until `commit`, then every byte.
pub fn a_stream_is_invisible_until_commit(t: Subject) {
    let s = t.storage.as_ref();
    let key = t.k("db/daily/a.sql.zst");
    let mut w = s.put_stream(&key, Some(10)).unwrap();
    w.write_all(b"hello ").unwrap();
    w.write_all(b"world").unwrap();
    assert!(s.stat(&key).unwrap().is_none(), "visible before commit");
    w.commit().unwrap();
    assert_eq!(read_all(s, &key), b"hello world");
    assert_eq!(s.stat(&key).unwrap().unwrap().size, 11);
}

/// A stream larger than several S3 parts (uploaded in the background, several at once) comes
/// back byte for byte, in order; one aborted after its first parts leaves nothing.
pub fn a_stream_of_many_parts_round_trips(t: Subject) {
    let s = t.storage.as_ref();
    let key = t.k("db/daily/big.sql");
    let mut rng = fastrand::Rng::with_seed(12);
    let data: Vec<u8> = (0..(29 << 20) + 123).map(|_| rng.u8(..)).collect();
    let mut w = s.put_stream(&key, None).unwrap();
    for piece in data.chunks(65_537) {
        w.write_all(piece).unwrap();
    }
    w.commit().unwrap();
    assert_eq!(s.stat(&key).unwrap().unwrap().size, data.len() as u64);
    assert!(
        read_all(s, &key) == data,
        "the object differs from what was written"
    );
    let gone = t.k("db/daily/gone.sql");
    let mut w = s.put_stream(&gone, None).unwrap();
    w.write_all(&data[..20 << 20]).unwrap();
    w.abort();
    assert!(s.stat(&gone).unwrap().is_none());
    assert!(
        s.orphans(&t.k(""), chrono::Utc::now() + chrono::Duration::hours(1))
            .unwrap()
            .is_empty(),
        "the aborted upload was left open"
    );
}

/// An aborted or dropped stream leaves nothing under its key.
pub fn an_aborted_or_dropped_stream_leaves_nothing(t: Subject) {
    let s = t.storage.as_ref();
    let mut w = s.put_stream(&t.k("db/daily/b.sql.zst"), None).unwrap();
    w.write_all(b"partial").unwrap();
    w.abort();
    assert!(s.stat(&t.k("db/daily/b.sql.zst")).unwrap().is_none());
    {
        let mut w = s.put_stream(&t.k("db/daily/c.sql.zst"), None).unwrap();
        w.write_all(b"partial").unwrap();
    }
    assert!(s.stat(&t.k("db/daily/c.sql.zst")).unwrap().is_none());
}

/// `put_bytes` replaces an existing object.
pub fn put_bytes_replaces(t: Subject) {
    let s = t.storage.as_ref();
    s.put_bytes(&t.k("index.json"), b"{1}").unwrap();
    s.put_bytes(&t.k("index.json"), b"{2}").unwrap();
    assert_eq!(s.get_bytes(&t.k("index.json")).unwrap().unwrap(), b"{2}");
}

/// `get_bytes` reads an object up to its cap whole, an empty one too, and fails on one over it
/// naming the key, with the object left as it is.
pub fn get_bytes_stops_at_its_cap(t: Subject) {
    let s = t.storage.as_ref();
    let body = vec![7u8; 100_000];
    s.put_bytes(&t.k("big.json"), &body).unwrap();
    s.put_bytes(&t.k("empty.json"), b"").unwrap();
    assert_eq!(
        s.get_bytes_at_most(&t.k("big.json"), 100_000)
            .unwrap()
            .unwrap(),
        body
    );
    assert_eq!(s.get_bytes(&t.k("empty.json")).unwrap().unwrap(), b"");
    let e = s.get_bytes_at_most(&t.k("big.json"), 99_999).unwrap_err();
    assert!(
        e.to_string().contains("big.json") && e.to_string().contains("move it aside"),
        "{e}"
    );
    assert!(s.get_bytes_at_most(&t.k("nope"), 10).unwrap().is_none());
    assert_eq!(s.stat(&t.k("big.json")).unwrap().unwrap().size, 100_000);
}

/// A missing key: `get` is `NotFound`, `get_bytes` and `stat` are `None`, `delete` succeeds.
pub fn missing_keys_are_not_errors_where_promised(t: Subject) {
    let s = t.storage.as_ref();
    assert!(s.get(&t.k("nope")).err().unwrap().is_not_found());
    assert!(s.get_bytes(&t.k("nope")).unwrap().is_none());
    assert!(s.stat(&t.k("nope")).unwrap().is_none());
    s.delete(&t.k("nope")).unwrap();
}

/// `list` of a prefix that matches nothing is empty; keys come back sorted; a prefix narrows.
pub fn listing_is_sorted_and_a_missing_prefix_is_empty(t: Subject) {
    let s = t.storage.as_ref();
    assert!(s.list(&t.k("missing/")).unwrap().is_empty());
    s.put_bytes(&t.k("index.json"), b"i").unwrap();
    s.put_bytes(&t.k("db/daily/a.sql.zst"), b"a").unwrap();
    let keys: Vec<String> = s
        .list(&t.base)
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .filter(|key| !key.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect();
    assert_eq!(keys, vec![t.k("db/daily/a.sql.zst"), t.k("index.json")]);
    assert_eq!(s.list(&t.k("db/")).unwrap().len(), 1);
}

/// `list_keys` gives exactly the keys `list` gives, in the same order.
pub fn list_keys_matches_list(t: Subject) {
    let s = t.storage.as_ref();
    assert!(s.list_keys(&t.k("missing/")).unwrap().is_empty());
    for k in [
        "db/hourly/b.sql.zst",
        "db/daily/a.manifest.json",
        "db/daily/a.sql.zst",
        "x.json",
    ] {
        s.put_bytes(&t.k(k), b"x").unwrap();
    }
    for prefix in [t.base.clone(), t.k("db/"), t.k("db/daily/a")] {
        let listed: Vec<String> = s
            .list(&prefix)
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(s.list_keys(&prefix).unwrap(), listed, "{prefix}");
    }
}

/// `survey` gives the keys `list` gives (the sizes it gives are theirs), and the orphans, where
/// it finds them, that `orphans` gives: a write in flight is one once the cut-off passes it.
pub fn survey_matches_list_and_orphans(t: Subject) {
    let s = t.storage.as_ref();
    for k in ["db/hourly/b.sql.zst", "db/daily/a.manifest.json", "x.json"] {
        s.put_bytes(&t.k(k), k.as_bytes()).unwrap();
    }
    let mut w = s.put_stream(&t.k("db/daily/c.sql.zst"), None).unwrap();
    w.write_all(b"in progress").unwrap();
    w.flush().unwrap();
    for older_than in [
        Utc::now() - chrono::Duration::hours(1),
        Utc::now() + chrono::Duration::hours(1),
    ] {
        let survey = s.survey(&t.base, older_than).unwrap();
        let mut keys: Vec<String> = survey.keys.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        assert_eq!(keys, s.list_keys(&t.base).unwrap());
        for (k, size) in &survey.keys {
            let stat = s.stat(k).unwrap().unwrap();
            assert!(size.is_none_or(|n| n == stat.size), "{k}: {size:?}");
        }
        if let Some(found) = survey.orphans {
            assert_eq!(found, s.orphans(&t.base, older_than).unwrap());
        }
    }
    w.abort();
}

/// `delete` removes the object.
pub fn delete_removes(t: Subject) {
    let s = t.storage.as_ref();
    s.put_bytes(&t.k("db/daily/a.sql.zst"), b"a").unwrap();
    s.delete(&t.k("db/daily/a.sql.zst")).unwrap();
    assert!(s.stat(&t.k("db/daily/a.sql.zst")).unwrap().is_none());
}

/// `delete_many` removes every key given, present or not (more than one S3 batch of 1,000),
/// and reports no failure; a key that leaves the root fails the whole request, deleting nothing.
pub fn delete_many_removes_present_and_missing_keys(t: Subject) {
    let s = t.storage.as_ref();
    let keys: Vec<String> = (0..1003)
        .map(|i| t.k(&format!("db/daily/{i:04}.sql")))
        .collect();
    for k in keys.iter().step_by(100) {
        s.put_bytes(k, b"x").unwrap();
    }
    let keep = t.k("db/daily/keep.sql");
    s.put_bytes(&keep, b"k").unwrap();
    let failed = s.delete_many(&keys).unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(s.list(&t.k("db/")).unwrap().len(), 1);
    let mut bad = vec![keep.clone(), "../outside".to_string()];
    assert!(s.delete_many(&bad).is_err());
    assert!(
        s.stat(&keep).unwrap().is_some(),
        "a refused request deleted something"
    );
    bad.pop();
    assert!(s.delete_many(&bad).unwrap().is_empty());
    assert!(s.stat(&keep).unwrap().is_none());
}

/// A fresh uncommitted write is not an orphan yet; older than the cut-off it is, and removing
/// it (twice) succeeds.
pub fn orphans_are_only_old_leftovers(t: Subject) {
    let s = t.storage.as_ref();
    let mut w = s.put_stream(&t.k("db/daily/d.sql.zst"), None).unwrap();
    w.write_all(b"in progress").unwrap();
    w.flush().unwrap();
    let past = Utc::now() - chrono::Duration::hours(1);
    assert!(
        s.orphans(&t.base, past).unwrap().is_empty(),
        "a fresh write counted as an orphan"
    );
    let future = Utc::now() + chrono::Duration::hours(1);
    for o in s.orphans(&t.base, future).unwrap() {
        assert!(o.key.starts_with(&t.base), "{o:?}");
        s.remove_orphan(&o).unwrap();
        s.remove_orphan(&o).unwrap();
    }
    w.abort();
    assert!(s.orphans(&t.base, future).unwrap().is_empty());
}

/// Encoded names (`%`, `~`, a leading `.` escaped) survive the trip through keys.
pub fn encoded_names_survive(t: Subject) {
    let s = t.storage.as_ref();
    let odd = t.k(&format!(
        "{}/{}/x.sql.zst",
        crate::layout::database_component("my db Ü"),
        crate::layout::encode_component("..")
    ));
    s.put_bytes(&odd, b"odd").unwrap();
    assert_eq!(s.get_bytes(&odd).unwrap().unwrap(), b"odd");
    assert_eq!(
        s.list(&t.k("my%20db"))
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect::<Vec<_>>(),
        vec![odd.clone()]
    );
    s.delete(&odd).unwrap();
    assert!(s.stat(&odd).unwrap().is_none());
}

/// Keys that would leave the root are refused with `InvalidKey` before any I/O (issue 10).
pub fn keys_that_leave_the_root_are_refused(t: Subject) {
    let s = t.storage.as_ref();
    for bad in [
        "/etc/passwd".to_string(),
        "../x".into(),
        t.k("../../x"),
        t.k("a//b"),
        t.k("./x"),
        String::new(),
    ] {
        let invalid =
            |r: Result<(), StorageError>| matches!(r, Err(StorageError::InvalidKey { .. }));
        assert!(invalid(s.get(&bad).map(drop)), "get {bad}");
        assert!(invalid(s.put_bytes(&bad, b"x")), "put {bad}");
        assert!(invalid(s.delete(&bad)), "delete {bad}");
        assert!(invalid(s.stat(&bad).map(drop)), "stat {bad}");
    }
}

/// `lock` can be taken again once released (it is per open file description).
pub fn a_released_lock_can_be_taken_again(t: Subject) {
    let s = t.storage.as_ref();
    let l = s.lock(&t.k("index")).unwrap();
    drop(l);
    let _again = s.lock(&t.k("index")).unwrap();
}

/// One `#[test]` per contract point for the storage that `$make` (an expression giving a
/// [`Subject`]) builds, each on a fresh subject.
#[macro_export]
macro_rules! storage_behaviour_tests {
    ($make:expr) => {
        $crate::storage_behaviour_tests!(@tests $make;
            preflight_succeeds,
            a_stream_is_invisible_until_commit,
            a_stream_of_many_parts_round_trips,
            an_aborted_or_dropped_stream_leaves_nothing,
            put_bytes_replaces,
            get_bytes_stops_at_its_cap,
            missing_keys_are_not_errors_where_promised,
            listing_is_sorted_and_a_missing_prefix_is_empty,
            list_keys_matches_list,
            survey_matches_list_and_orphans,
            delete_removes,
            delete_many_removes_present_and_missing_keys,
            orphans_are_only_old_leftovers,
            encoded_names_survive,
            keys_that_leave_the_root_are_refused,
            a_released_lock_can_be_taken_again
        );
    };
    (@tests $make:expr; $($point:ident),*) => {
        $(
            #[test]
            fn $point() {
                $crate::storage::behaviour::$point($make);
            }
        )*
    };
}
