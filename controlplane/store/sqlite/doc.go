// Package sqlite is the embedded store: the control plane's state in one SQLite file, for a
// single machine (tockd dev, small installations). It implements store.Store on
// modernc.org/sqlite, a pure-Go SQLite, so tockd needs no C toolchain.
//
// # Connections
//
// SQLite lets one writer in at a time. Rather than have many connections race for the write
// lock and fail with SQLITE_BUSY, the store keeps two pools on the same file:
//
//	write pool ── 1 connection ── BEGIN IMMEDIATE ── every method that changes something
//	read pool  ── N connections ── query_only ────── single-statement reads (Get*, List*, …)
//
// Writers queue in database/sql for the one write connection, in Go, where the wait honours
// ctx; each write transaction takes the write lock when it begins (BEGIN IMMEDIATE), so it
// never has to upgrade a read lock halfway and never deadlocks against another writer. In WAL
// mode readers do not block the writer nor the writer them. A second process on the same file
// is serialised by SQLite's busy_timeout (see WithBusyTimeout).
//
// "Now" inside a method is the clock given by WithClock (time.Now by default), read after the
// write lock is taken, so the times a store records follow the order of its transactions.
//
// # Durability
//
// The file is opened with journal_mode=WAL and synchronous=NORMAL. A committed transaction
// survives a crash of the process (the WAL is in the operating system's cache, and SQLite
// recovers it on the next open); a power loss or kernel crash can lose the last transactions
// committed before the next checkpoint, but never corrupts the file. synchronous=FULL would
// close that window at the cost of an fsync per commit; for an embedded single-machine
// scheduler the trade is made for throughput. Installations that need more run PostgreSQL or
// CockroachDB.
//
// # Encoding
//
// Times are INTEGER microseconds since the Unix epoch, UTC (sortable, compact); a zero time is
// NULL. Durations are INTEGER microseconds. Maps, lists, schedules, retry policies and errors
// are JSON text. Tables are STRICT, so a value of the wrong type is an error, not a surprise.
//
// # Schema
//
// The schema is in migrations/, one DDL statement per file, applied by goose when the store
// opens. Each index names the query it serves.
package sqlite
