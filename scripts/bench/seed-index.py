#!/usr/bin/env python3
"""Writes a synthetic sqlguard 0.1 index (one <server>/index.json, the legacy layout) with N
records, for the index benchmarks: D databases backed up hourly (19 of 20 records) and daily,
newest now, one run in 50 failed. With --objects, also writes a sparse object (at the record's
size, which prune checks the copies it keeps against) and a manifest for every successful
record (what prune deletes). The first sqlguard write migrates it.

    seed-index.py ROOT SERVER N [--databases D] [--objects] [--storage NAME]
"""
import argparse
import datetime as dt
import json
import os

p = argparse.ArgumentParser()
p.add_argument("root")
p.add_argument("server")
p.add_argument("n", type=int)
p.add_argument("--databases", type=int, default=20)
p.add_argument("--objects", action="store_true")
p.add_argument("--storage", default="local", help="the storage name the records carry (default: local)")
a = p.parse_args()

now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
records = []
hourly = daily = 0
for i in range(a.n):
    db = f"db{i % a.databases:02d}"
    if (i // a.databases) % 20 == 19:
        t, started = "daily", now - dt.timedelta(days=daily // a.databases, minutes=30)
        daily += 1
    else:
        t, started = "hourly", now - dt.timedelta(hours=hourly // a.databases)
        hourly += 1
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    rid = f"{stamp}_{i:08x}"
    ok = i % 50 != 7
    key = f"{a.server}/{db}/{t}/{rid}.sql.zst" if ok else None
    manifest = f"{a.server}/{db}/{t}/{rid}.manifest.json" if ok else None
    r = {
        "id": rid, "server": a.server, "database": db, "type": t, "storage": a.storage,
        "status": "success" if ok else "failed",
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": (started + dt.timedelta(seconds=42)).isoformat().replace("+00:00", "Z"),
        "duration_seconds": 42.0, "raw_bytes": 4_000_000 + i, "compressed_bytes": 1_000_000 + i if ok else 0,
        "sha256": f"{i:064x}" if ok else None, "compression": "zstd", "compression_level": 3,
        "key": key, "manifest_key": manifest, "server_version": "11.8.3-MariaDB",
        "dump_tool": "mariadb-dump", "dump_tool_version": "mariadb-dump from 11.8.3-MariaDB",
        "sqlguard_version": "0.1.0", "error": None if ok else "mariadb-dump: Got error: 2013: Lost connection",
    }
    records.append(r)
    if a.objects and ok:
        d = os.path.join(a.root, os.path.dirname(key))
        os.makedirs(d, exist_ok=True)
        # Sparse, at the size the record gives: prune checks the copies it keeps against it.
        with open(os.path.join(a.root, key), "wb") as f:
            f.truncate(r["compressed_bytes"])
        with open(os.path.join(a.root, manifest), "w") as f:
            json.dump(r, f)
records.sort(key=lambda r: (r["started_at"], r["id"]))
os.makedirs(os.path.join(a.root, a.server), exist_ok=True)
with open(os.path.join(a.root, a.server, "index.json"), "w") as f:
    json.dump({"schema_version": 1, "server": a.server, "backups": records}, f)
print(f"{a.n} records ({hourly} hourly, {daily} daily) in {a.databases} databases")
