//! The writer of every table the request paths change (streams, rooms, service nodes): rows
//! written behind the request, and rows committed before it is answered.
//!
//! A change is applied in memory by its owner at once and queued here; the writer task
//! coalesces queued rows by key (the newer change wins), writes them in batches (one
//! transaction each), and keeps a batch that failed to write, retrying with backoff and merging
//! newer changes into it, so nothing accepted is dropped while the process lives.
//! [`WriteBehind::flush`] waits until everything queued so far is written (shutdown, tests).
//!
//! [`WriteBehind::commit`] is the other way in, for a change that must not be acknowledged
//! before it is stored (creating or ending a stream): the row is written in the next
//! transaction, which starts as soon as the writer is free, and the caller waits for its
//! commit. Group commit: every commit request that arrives while a transaction runs shares the
//! next one (with whatever is queued behind), so a busy writer commits many requests per
//! transaction and an idle one answers after a single round trip. The transaction is durable
//! (`Persist::save_durably`). A commit that fails is answered with the error and dropped; the
//! caller has not changed memory, so nothing is left half done. Rows queued behind the
//! request in the same transaction stay queued and are retried as usual.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::metrics as m;
use crate::store::{Db, StoreError};

/// A row the writer can persist.
pub trait Persist: Clone + Send + Sync + 'static {
    /// The table, as the metrics' `table` label.
    const TABLE: &'static str;
    /// Rows with the same key coalesce.
    fn key(&self) -> &str;
    /// Of two rows with the same key, the one with the greater stamp (its last change) is kept.
    fn stamp(&self) -> i64;
    /// Writes a batch in one transaction (idempotent: a batch may be written again).
    fn save(db: &Db, rows: &[Self]) -> Result<usize, StoreError>;
    /// Writes a batch in one transaction that survives a crash of the process or the machine
    /// once it returns (the batch holds rows whose commit a caller waits for).
    fn save_durably(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
        Self::save(db, rows)
    }
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Msg<R> {
    Save(R),
    Commit(R, Ack),
    Flush(Ack),
}

/// Sends rows to the background writer.
pub struct WriteBehind<R> {
    tx: mpsc::UnboundedSender<Msg<R>>,
    depth: Arc<AtomicUsize>,
}

impl<R> Clone for WriteBehind<R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            depth: self.depth.clone(),
        }
    }
}

impl<R: Persist> std::fmt::Debug for WriteBehind<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("table", &R::TABLE)
            .field("depth", &self.depth())
            .finish()
    }
}

/// Most rows written in one transaction.
const MAX_BATCH: usize = 500;

impl<R: Persist> WriteBehind<R> {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(db: Db, interval: Duration) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run::<R>(db, rx, depth.clone(), interval));
        (WriteBehind { tx, depth }, task)
    }

    /// Queues a row for writing.
    pub fn save(&self, row: R) {
        let d = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => R::TABLE).set(d as f64);
        if self.tx.send(Msg::Save(row)).is_err() {
            tracing::error!(
                table = R::TABLE,
                "write-behind task is gone; change not persisted"
            );
        }
    }

    /// Writes a row in the next transaction and waits for its commit (group commit: see the
    /// module docs). An error means the row is not stored.
    pub async fn commit(&self, row: R) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Commit(row, ack))
            .map_err(|_| format!("{} writer task is gone", R::TABLE))?;
        done.await
            .map_err(|_| format!("{} writer task stopped", R::TABLE))?
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| format!("{} write-behind task is gone", R::TABLE))?;
        done.await
            .map_err(|_| format!("{} write-behind task stopped", R::TABLE))?
    }

    /// Rows accepted and not yet written.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

async fn run<R: Persist>(
    db: Db,
    mut rx: mpsc::UnboundedReceiver<Msg<R>>,
    depth: Arc<AtomicUsize>,
    interval: Duration,
) {
    // Pending rows by key: a newer change to the same key replaces an older one.
    let mut pending: HashMap<String, R> = HashMap::new();
    let mut waiters: Vec<Ack> = Vec::new();
    // Rows whose callers wait for their commit, in arrival order.
    let mut commits: Vec<(R, Ack)> = Vec::new();
    let mut backoff = interval;
    loop {
        let msg = if pending.is_empty() && waiters.is_empty() {
            match rx.recv().await {
                Some(m) => Some(m),
                None => break,
            }
        } else {
            match tokio::time::timeout(backoff, rx.recv()).await {
                Ok(Some(m)) => Some(m),
                Ok(None) => {
                    // Senders gone: write what is left and stop.
                    let _ = write(&db, &mut pending, Vec::new(), &depth).await;
                    break;
                }
                Err(_) => None,
            }
        };
        let mut flush_now = msg.is_none();
        let mut take =
            |m: Msg<R>, pending: &mut HashMap<String, R>, commits: &mut Vec<(R, Ack)>| match m {
                Msg::Save(row) => {
                    let newer = pending
                        .get(row.key())
                        .is_none_or(|p| p.stamp() <= row.stamp());
                    let replaces = pending.contains_key(row.key());
                    if newer {
                        pending.insert(row.key().to_string(), row);
                    }
                    // Either the row replaced a pending one or it was older than it: one change
                    // fewer to write.
                    if replaces || !newer {
                        depth.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Msg::Commit(row, ack) => commits.push((row, ack)),
                Msg::Flush(ack) => waiters.push(ack),
            };
        if let Some(m) = msg {
            take(m, &mut pending, &mut commits);
            // Everything that arrived meanwhile joins this transaction.
            while pending.len() + commits.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut pending, &mut commits),
                    Err(_) => break,
                }
            }
        }
        if !waiters.is_empty() || !commits.is_empty() || pending.len() >= MAX_BATCH {
            flush_now = true;
        }
        if !flush_now {
            continue;
        }
        let (rows, acks): (Vec<R>, Vec<Ack>) = commits.drain(..).unzip();
        let res = write(&db, &mut pending, rows, &depth).await;
        for a in acks {
            let _ = a.send(res.clone());
        }
        match res {
            Ok(()) => {
                backoff = interval;
                for w in waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) => {
                if pending.is_empty() {
                    tracing::warn!(table = R::TABLE, error = %e, "commit failed; answered with the error");
                } else {
                    tracing::warn!(table = R::TABLE, error = %e, rows = pending.len(), "write failed; will retry");
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                for w in waiters.drain(..) {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes the pending rows and `commits` in one transaction (durably when `commits` is not
/// empty). On success the pending rows are cleared; on failure they stay for a retry, and the
/// commits are the caller's to answer.
async fn write<R: Persist>(
    db: &Db,
    pending: &mut HashMap<String, R>,
    commits: Vec<R>,
    depth: &AtomicUsize,
) -> Result<(), String> {
    if pending.is_empty() && commits.is_empty() {
        return Ok(());
    }
    let durable = !commits.is_empty();
    let n = pending.len();
    // One row per key, the newer change winning, as sequential writes would leave it.
    let mut batch: HashMap<&str, &R> = pending.iter().map(|(k, r)| (k.as_str(), r)).collect();
    for row in &commits {
        if batch
            .get(row.key())
            .is_none_or(|p| p.stamp() <= row.stamp())
        {
            batch.insert(row.key(), row);
        }
    }
    let rows: Vec<R> = batch.into_values().cloned().collect();
    let db = db.clone();
    let res = tokio::task::spawn_blocking(move || {
        if durable {
            R::save_durably(&db, &rows)
        } else {
            R::save(&db, &rows)
        }
    })
    .await
    .map_err(|e| format!("writer thread failed: {e}"))
    .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let outcome = if res.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::DB_FLUSHES.name, "table" => R::TABLE, "outcome" => outcome).increment(1);
    if res.is_ok() {
        pending.clear();
        depth.fetch_sub(n, Ordering::Relaxed);
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => R::TABLE)
            .set(depth.load(Ordering::Relaxed) as f64);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StreamRow;
    use crate::store::testing::TestDb;

    fn row(id: &str, state: &str, updated_ms: i64) -> StreamRow {
        StreamRow {
            id: id.into(),
            anchor_id: "a".into(),
            region: "tw".into(),
            providers: "[\"p\"]".into(),
            state: state.into(),
            reason: String::new(),
            started_ms: 1,
            ended_ms: None,
            updated_ms,
        }
    }

    #[tokio::test]
    async fn the_newer_change_wins_and_flush_writes_everything() {
        let db = TestDb::sqlite();
        let (w, _task) = WriteBehind::<StreamRow>::spawn(db.db().clone(), Duration::from_secs(60));
        // Queued newest first: the older change that follows must not win.
        w.save(row("s1", "ended", 30));
        w.save(row("s1", "live", 20));
        for i in 0..1200 {
            w.save(row(&format!("bulk{i}"), "live", i));
        }
        w.flush().await.unwrap();
        assert_eq!(w.depth(), 0);
        assert_eq!(db.get_stream("s1").unwrap().unwrap().state, "ended");
        assert_eq!(db.streams_in_state("live", 10_000).unwrap().len(), 1200);
    }

    /// A stream row whose durable transactions are counted.
    #[derive(Clone)]
    struct Counted(StreamRow);

    static DURABLE_SAVES: AtomicUsize = AtomicUsize::new(0);

    impl Persist for Counted {
        const TABLE: &'static str = "streams";
        fn key(&self) -> &str {
            &self.0.id
        }
        fn stamp(&self) -> i64 {
            self.0.updated_ms
        }
        fn save(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
            db.save_streams(&rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
        }
        fn save_durably(db: &Db, rows: &[Self]) -> Result<usize, StoreError> {
            DURABLE_SAVES.fetch_add(1, Ordering::SeqCst);
            db.save_streams_durably(&rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
        }
    }

    #[tokio::test]
    async fn a_commit_answers_once_stored_and_concurrent_ones_share_transactions() {
        let db = TestDb::sqlite();
        // A write-behind interval that never elapses in the test: only commits write.
        let (w, _task) = WriteBehind::<Counted>::spawn(db.db().clone(), Duration::from_secs(600));
        w.save(Counted(row("behind", "live", 1)));
        let commits: Vec<_> = (0..300)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(
                    async move { w.commit(Counted(row(&format!("c{i}"), "live", 5))).await },
                )
            })
            .collect();
        for c in commits {
            c.await.unwrap().unwrap();
        }
        let transactions = DURABLE_SAVES.load(Ordering::SeqCst);
        assert!(
            (1..30).contains(&transactions),
            "300 concurrent commits took {transactions} transactions"
        );
        // Each answered commit is stored, and so is what was queued behind before it.
        assert_eq!(db.streams_in_state("live", 10_000).unwrap().len(), 301);
        assert_eq!(w.depth(), 0);
        let (w, _task) = WriteBehind::<StreamRow>::spawn(db.db().clone(), Duration::from_secs(600));
        // An end committed after its create wins; an older row committed later does not.
        w.commit(row("c0", "ended", 9)).await.unwrap();
        w.commit(row("c0", "live", 6)).await.unwrap();
        assert_eq!(db.get_stream("c0").unwrap().unwrap().state, "ended");
    }

    #[tokio::test]
    async fn a_failed_commit_is_answered_with_the_error_and_not_retried() {
        // No tables: every write fails.
        let db = TestDb::sqlite_unmigrated();
        let (w, _task) =
            WriteBehind::<StreamRow>::spawn(db.db().clone(), Duration::from_millis(10));
        let e = w.commit(row("s1", "live", 1)).await.unwrap_err();
        assert!(e.contains("save streams"), "{e}");
        db.run_migrations().unwrap();
        // The writer goes on, and the refused row was dropped, not written later.
        w.commit(row("s2", "live", 1)).await.unwrap();
        w.flush().await.unwrap();
        assert!(db.get_stream("s1").unwrap().is_none());
        assert!(db.get_stream("s2").unwrap().is_some());
    }
}
