//! The dump statement splitter behind the restore guard: whatever the bytes and however they are
//! cut into chunks, it never panics and loses or duplicates nothing (the statements put back
//! together are the input), and every head classifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sqlguard::sqlscan::{classify, Event, Policy, Splitter};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, text)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let policy = Policy {
        source: "shop".into(),
        target: "copy".into(),
    };
    let mut s = Splitter::new();
    let mut back = Vec::with_capacity(text.len());
    let mut on = |e: Event| -> Result<(), ()> {
        match e {
            Event::Bytes(b) => back.extend_from_slice(b),
            Event::Head(h) => {
                let _ = policy.check(&classify(h));
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
});
