//! Benchmark (not a test): the inventory scan of a dump, against reading it alone.
//!   zstd -dc dump.sql.zst > /tmp/dump.sql; cargo bench --bench inventory -- /tmp/dump.sql
//! Prints the scan's throughput and the inventory's totals.

use std::time::Instant;

fn main() {
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        eprintln!("usage: cargo bench --bench inventory -- DUMP.sql");
        std::process::exit(2);
    };
    let data = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(2);
    });
    let mb = data.len() as f64 / 1e6;
    let mut best = f64::MAX;
    let mut inv = Default::default();
    for _ in 0..3 {
        let t = Instant::now();
        let mut s = sqlguard::inventory::Scanner::new();
        for chunk in data.chunks(1 << 20) {
            s.feed(chunk);
        }
        inv = s.finish();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let inv: sqlguard::inventory::Inventory = inv;
    println!(
        "scanned {mb:.0} MB in {best:.3} s ({:.0} MB/s): {} tables, {} rows",
        mb / best,
        inv.tables.len(),
        inv.rows()
    );
}
