//! The dump statement splitter behind the restore guard: whatever the bytes and however they are
//! cut into chunks, it never panics and loses or duplicates nothing (the statements put back
//! together are the input), and every head classifies under both restore policies. The
//! inventory scan of the same bytes never panics, whatever the chunks. (It may count bytes no
//! dump tool writes — a comment or a backslash outside quotes inside an INSERT — differently
//! depending on where a chunk ends, since its INSERT fast path does not read them as the
//! splitter does; a restore test then reports a difference, never a false pass. Names, which
//! the fuzzer showed could differ by whitespace or length, are read exactly either way.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlguard::inventory::Scanner;
use sqlguard::sqlscan::{classify, Event, Policy, Splitter};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, text)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let policy = Policy {
        source: "shop".into(),
        target: "copy".into(),
        accounts: false,
    };
    let accounts = Policy {
        accounts: true,
        ..policy.clone()
    };
    let mut s = Splitter::new();
    let mut back = Vec::with_capacity(text.len());
    let mut on = |e: Event| -> Result<(), ()> {
        match e {
            Event::Bytes(b) => back.extend_from_slice(b),
            Event::Head(h) => {
                let k = classify(h);
                let _ = policy.check(&k);
                let _ = accounts.check(&k);
            }
            Event::End | Event::ClientCommand(_) => {}
        }
        Ok(())
    };
    for c in text.chunks(chunk) {
        s.feed(c, &mut on).unwrap();
    }
    s.finish(&mut on).unwrap();
    assert_eq!(back, text);
    for size in [chunk, text.len().max(1)] {
        let mut sc = Scanner::new();
        for c in text.chunks(size) {
            sc.feed(c);
        }
        let _ = sc.binlog();
        let _ = sc.finish();
    }
});
