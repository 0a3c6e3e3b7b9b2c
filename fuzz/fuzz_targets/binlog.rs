//! The binary log event framing: any bytes, read as the tool's output from any start (the
//! archiver's `SegmentReader`) or pushed in any chunking through `verify`'s `SegmentCheck`, end
//! in facts or an error; never a panic, never an allocation beyond the declared event size cap.
#![no_main]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;
use sqlguard::binlog::events::{GtidState, SegmentCheck, SegmentFacts, SegmentReader};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let start = if first & 1 == 0 { 0 } else { u64::from(first) * 7 };
    let facts = Arc::new(Mutex::new(SegmentFacts::default()));
    let mut out = Vec::new();
    // The checks a continuation adds: the file's creation time, and the state its GTID list
    // must hold.
    let after = (first & 4 != 0).then(|| GtidState::parse("0-1-5,1-2-7"));
    let _ = SegmentReader::new(rest, start, Arc::clone(&facts))
        .same_file((first & 8 != 0).then_some(u32::from(first)))
        .new_to(after.clone())
        .next_after(after)
        .read_to_end(&mut out);
    let f = facts.lock().unwrap().clone();
    let seg = sqlguard::index::Segment {
        file: "binlog.000001".into(),
        start,
        end: f.end,
        events: f.events,
        closed: f.closed,
        crc32: first & 2 == 0,
        ..Default::default()
    };
    let mut check = SegmentCheck::new(start, seg.crc32);
    for chunk in rest.chunks(usize::from(first % 13) + 1) {
        let _ = check.write_all(chunk);
    }
    let _ = check.problems(&seg);
});
