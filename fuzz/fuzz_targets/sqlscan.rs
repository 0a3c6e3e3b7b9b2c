//! The dump statement splitter behind the restore guard: whatever the bytes and however they are
//! cut into chunks, it never panics and loses or duplicates nothing (the statements put back
//! together are the input), and every head classifies under both restore policies. Every
//! statement goes through the event rewrite and the sequence retarget (which leaves a statement
//! without the source's name as it is), and the whole text through the restore guard with
//! events disabled and `--no-binlog`, neither of which may panic. The
//! inventory scan of the same bytes never panics, whatever the chunks. (It may count bytes no
//! dump tool writes — a comment or a backslash outside quotes inside an INSERT — differently
//! depending on where a chunk ends, since its INSERT fast path does not read them as the
//! splitter does; a restore test then reports a difference, never a false pass. Names, which
//! the fuzzer showed could differ by whitespace or length, are read exactly either way.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlguard::inventory::Scanner;
use std::io::Write;

use sqlguard::sqlscan::{
    classify, event_disabled, sequences_retargeted, uses_sequences, Event, Policy, Splitter,
};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, text)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let policy = Policy {
        source: "shop".into(),
        target: "copy".into(),
        accounts: false,
        disable_events: false,
        no_binlog: false,
        server: None,
        reached: sqlguard::sqlscan::Reached {
            triggered: vec!["t".into()],
            views: vec!["v".into()],
            reaching: vec!["m".into()],
            views_dropped_after_rows: false,
        },
        existing_accounts: vec![("root".into(), "localhost".into())],
    };
    let accounts = Policy {
        accounts: true,
        ..policy.clone()
    };
    let mut s = Splitter::new();
    let mut back = Vec::with_capacity(text.len());
    let mut statement = Vec::new();
    let mut on = |e: Event| -> Result<(), ()> {
        match e {
            Event::Bytes(b) => {
                back.extend_from_slice(b);
                statement.extend_from_slice(b);
            }
            Event::Head(h) => {
                let k = classify(h);
                let _ = policy.check(&k);
                let _ = accounts.check(&k);
            }
            Event::End => {
                let _ = event_disabled(&statement, None, false);
                // The sequence retarget touches only the source's name: without it, nothing.
                let _ = uses_sequences(&statement, true, None);
                let aimed = sequences_retargeted(&statement, true, None, ("shop", "copy"));
                if !statement.windows(4).any(|w| w == b"shop") {
                    assert_eq!(aimed, statement);
                }
                statement.clear();
            }
            Event::ClientCommand(_) | Event::Unfollowable(_) => {}
        }
        Ok(())
    };
    for c in text.chunks(chunk) {
        s.feed(c, &mut on).unwrap();
    }
    s.finish(&mut on).unwrap();
    assert_eq!(back, text);
    let mut guard = sqlguard::restore::Guard::new(
        Vec::new(),
        Policy {
            disable_events: true,
            no_binlog: true,
            ..policy.clone()
        },
    );
    let written = text.chunks(chunk).try_for_each(|c| guard.write_all(c));
    if written.is_ok() {
        let _ = guard.finish();
    }
    for size in [chunk, text.len().max(1)] {
        let mut sc = Scanner::new();
        for c in text.chunks(size) {
            sc.feed(c);
        }
        let _ = sc.binlog();
        let _ = sc.finish();
    }
});
