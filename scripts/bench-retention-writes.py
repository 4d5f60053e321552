# Write cost of a partial index of finished deliveries (migration v6-retention) on the
# delivery lifecycle, at the SQLite level, with the statements SQLiteStore runs: accept
# (64 inserts per transaction), claim (64 pending -> in_flight per transaction), finish (one
# in_flight -> delivered + one attempt row per transaction). CPU time of this process
# (time.process_time), so other work on the machine does not skew it.
#
# Usage: python3 scripts/bench-retention-writes.py BASE.db VARIANT [N] [SYNC]
#   BASE.db: a database with the v1-v3 deliveries schema and its history rows (copied first)
#   VARIANT: base | index (condition listing the finished statuses) | statusidx (the one
#            v6-retention uses) | dueidx | triggers (a history counts table kept by triggers) | both
#   SYNC: OFF (default: CPU only) or FULL
import sqlite3, sys, time, os, random, shutil
base = sys.argv[1]          # a database with the v1-v4 schema (and history rows)
variant = sys.argv[2]       # base | index | triggers | both
n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
sync = sys.argv[4] if len(sys.argv) > 4 else "OFF"
path = f"{base}.run-{variant}.db"
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix): os.remove(path + suffix)
shutil.copy(base, path)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute(f"PRAGMA synchronous={sync}")
hist = "('delivered','acknowledged','dead','cancelled')"
if variant in ("index", "both"):
    db.execute("CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE status IN ('acknowledged','cancelled','dead') OR (status = 'delivered' AND require_ack = 0)")
if variant == "dueidx":
    db.execute("CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE due_at IS NULL")
if variant == "statusidx":
    db.execute("CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE status != 'pending' AND status != 'in_flight'")
if variant in ("triggers", "both"):
    db.executescript(f"""
    CREATE TABLE delivery_history_counts (status TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO delivery_history_counts (status, n) VALUES ('delivered',0),('acknowledged',0),('dead',0),('cancelled',0);
    UPDATE delivery_history_counts SET n = (SELECT COUNT(*) FROM deliveries d WHERE d.status = delivery_history_counts.status);
    CREATE TRIGGER deliveries_history_update AFTER UPDATE OF status ON deliveries
    WHEN OLD.status != NEW.status AND (OLD.status IN {hist} OR NEW.status IN {hist})
    BEGIN
        UPDATE delivery_history_counts SET n = n - 1 WHERE status = OLD.status;
        UPDATE delivery_history_counts SET n = n + 1 WHERE status = NEW.status;
    END;
    CREATE TRIGGER deliveries_history_delete AFTER DELETE ON deliveries WHEN OLD.status IN {hist}
    BEGIN
        UPDATE delivery_history_counts SET n = n - 1 WHERE status = OLD.status;
    END;
    """)
db.execute("CREATE TABLE IF NOT EXISTS delivery_attempts (seq INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id TEXT NOT NULL, number INTEGER NOT NULL, started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL, endpoint TEXT, status_code INTEGER, error_class TEXT, decision TEXT NOT NULL)")
db.execute("CREATE INDEX IF NOT EXISTS delivery_attempts_delivery ON delivery_attempts(delivery_id, seq)")
headers = '[{"name":"Content-Type","value":"application/json"}]'
body = os.urandom(120)
ids = [f"dlv_{1800000000000 + i:012x}{random.getrandbits(64):016x}" for i in range(n)]
now = 1800000000000
t = time.process_time()
for k in range(0, n, 64):
    db.execute("BEGIN")
    for i in ids[k:k+64]:
        db.execute("INSERT INTO deliveries (id, upstream, method, path, headers, body, idempotency_key, caller_key, fingerprint, require_ack, status, due_at, created_at, updated_at, ordering_key) VALUES (?, 'sink', 'POST', '/v1/orders', ?, ?, ?, NULL, ?, 0, 'pending', ?, ?, ?, NULL)", (i, headers, body, i, i, now, now, now))
    db.execute("COMMIT")
accept = time.process_time() - t
t = time.process_time()
for k in range(0, n, 64):
    db.execute("BEGIN")
    for i in ids[k:k+64]:
        db.execute("UPDATE deliveries SET status = 'in_flight', lease_owner = 'w', due_at = ?, updated_at = ? WHERE id = ?", (now + 30000, now, i))
    db.execute("COMMIT")
claim = time.process_time() - t
t = time.process_time()
for i in ids:
    db.execute("BEGIN")
    db.execute("UPDATE deliveries SET status = 'delivered', due_at = NULL, last_error = COALESCE(NULL, last_error), escalated = 0, attempt_count = attempt_count + 1, schedule_step = schedule_step + 1, delivered_at = ?, lease_owner = NULL, updated_at = ? WHERE id = ? AND lease_owner = 'w' AND status = 'in_flight'", (now, now, i))
    db.execute("INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, endpoint, status_code, error_class, decision) VALUES (?, 1, ?, 3, '127.0.0.1:1', 200, NULL, 'delivered')", (i, now))
    db.execute("COMMIT")
finish = time.process_time() - t
print(f"{variant:9s} sync={sync} n={n}: accept {n/accept:8.0f}/s  claim {n/claim:8.0f}/s  finish {n/finish:8.0f}/s")
