//! Room rows written behind the request: coalesced by anchor, written in batches, retried with
//! backoff when the database fails (nothing accepted is dropped while the process lives), and
//! flushed on demand (shutdown, tests). The same shape as `streams::WriteBehind`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::metrics as m;
use crate::store::{Db, RoomRow};

enum Msg {
    Save(RoomRow),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Sends room rows to the background writer.
#[derive(Debug, Clone)]
pub struct RoomWriter {
    tx: mpsc::UnboundedSender<Msg>,
    depth: Arc<AtomicUsize>,
}

/// Most rows written in one transaction.
const MAX_BATCH: usize = 500;

impl RoomWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(db: Db, interval: Duration) -> (RoomWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(db, rx, depth.clone(), interval));
        (RoomWriter { tx, depth }, task)
    }

    /// Queues a room row.
    pub fn save(&self, row: RoomRow) {
        let d = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => "rooms").set(d as f64);
        if self.tx.send(Msg::Save(row)).is_err() {
            tracing::error!("room write-behind task is gone; change not persisted");
        }
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| "room write-behind task is gone".to_string())?;
        done.await
            .map_err(|_| "room write-behind task stopped".to_string())?
    }

    /// Rows accepted and not yet written.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

async fn run(
    db: Db,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    depth: Arc<AtomicUsize>,
    interval: Duration,
) {
    let mut pending: HashMap<String, RoomRow> = HashMap::new();
    let mut waiters: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
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
                    let _ = write(&db, &mut pending, &depth).await;
                    break;
                }
                Err(_) => None,
            }
        };
        let mut flush_now = msg.is_none();
        let mut take = |m: Msg, pending: &mut HashMap<String, RoomRow>| match m {
            Msg::Save(row) => {
                let newer = pending
                    .get(&row.anchor_id)
                    .is_none_or(|p| p.updated_ms <= row.updated_ms);
                let replaced = if newer {
                    pending.insert(row.anchor_id.clone(), row).is_some()
                } else {
                    true
                };
                if replaced {
                    depth.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Msg::Flush(ack) => waiters.push(ack),
        };
        if let Some(m) = msg {
            take(m, &mut pending);
            while pending.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => take(m, &mut pending),
                    Err(_) => break,
                }
            }
        }
        if !waiters.is_empty() || pending.len() >= MAX_BATCH {
            flush_now = true;
        }
        if !flush_now {
            continue;
        }
        match write(&db, &mut pending, &depth).await {
            Ok(()) => {
                backoff = interval;
                for w in waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = pending.len(), "room write failed; will retry");
                backoff = (backoff * 2).min(Duration::from_secs(10));
                for w in waiters.drain(..) {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn write(
    db: &Db,
    pending: &mut HashMap<String, RoomRow>,
    depth: &AtomicUsize,
) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows: Vec<RoomRow> = pending.values().cloned().collect();
    let n = rows.len();
    let db = db.clone();
    let res = tokio::task::spawn_blocking(move || db.save_rooms(&rows))
        .await
        .map_err(|e| format!("room writer thread failed: {e}"))
        .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let outcome = if res.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::DB_FLUSHES.name, "table" => "rooms", "outcome" => outcome).increment(1);
    if res.is_ok() {
        pending.clear();
        depth.fetch_sub(n, Ordering::Relaxed);
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => "rooms")
            .set(depth.load(Ordering::Relaxed) as f64);
    }
    res
}
