//! Writes registered nodes behind the heartbeat handler: changes are coalesced by node id and
//! upserted in one transaction per interval; a failed write is kept, merged with newer changes
//! and retried with backoff. Losing the last interval in a crash costs nothing lasting: nodes
//! heartbeat again within their timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::metrics as m;
use crate::store::{Db, NodeRow};

enum Msg {
    Save(NodeRow),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Sends node changes to the background writer.
#[derive(Debug, Clone)]
pub struct NodeWriter {
    tx: mpsc::UnboundedSender<Msg>,
    /// Node changes accepted and not yet written (coalesced ones no longer count).
    depth: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Save(r) => write!(f, "Save({})", r.id),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl NodeWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(db: Db, interval: Duration) -> NodeWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(db, rx, depth.clone(), interval));
        NodeWriter { tx, depth }
    }

    /// Node changes accepted and not yet written.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Queues a node's state.
    pub fn save(&self, row: NodeRow) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Save(row)).is_err() {
            tracing::error!("node writer is gone; heartbeat not persisted");
        }
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| "node writer is gone".to_string())?;
        done.await.map_err(|_| "node writer stopped".to_string())?
    }
}

async fn run(
    db: Db,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    depth: Arc<AtomicUsize>,
    interval: Duration,
) {
    let mut pending: HashMap<String, NodeRow> = HashMap::new();
    let mut waiters: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
    let mut backoff = interval;
    // When the pending rows are due; set when the first of them arrives.
    let mut due: Option<Instant> = None;
    loop {
        let msg = match due {
            None => match rx.recv().await {
                Some(m) => Some(m),
                None => break,
            },
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(Some(m)) => Some(m),
                Ok(None) => {
                    let _ = write(&db, &mut pending, &depth).await;
                    break;
                }
                Err(_) => None,
            },
        };
        if let Some(m) = msg {
            let mut batch = vec![m];
            while let Ok(m) = rx.try_recv() {
                batch.push(m);
            }
            for m in batch {
                match m {
                    Msg::Save(row) => {
                        let newer = pending
                            .get(&row.id)
                            .is_none_or(|p| p.last_seen_ms <= row.last_seen_ms);
                        // Either the row replaces a pending one or it is dropped as older:
                        // one change fewer to write.
                        let replaces = pending.contains_key(&row.id);
                        if newer {
                            pending.insert(row.id.clone(), row);
                        }
                        if replaces || !newer {
                            depth.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    Msg::Flush(ack) => waiters.push(ack),
                }
            }
            if due.is_none() && !pending.is_empty() {
                due = Some(Instant::now() + backoff);
            }
            if waiters.is_empty() {
                continue;
            }
        }
        match write(&db, &mut pending, &depth).await {
            Ok(()) => {
                backoff = interval;
                due = None;
                for w in waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = pending.len(), "service node write failed; will retry");
                backoff = (backoff * 2).min(Duration::from_secs(10));
                due = Some(Instant::now() + backoff);
                for w in waiters.drain(..) {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn write(
    db: &Db,
    pending: &mut HashMap<String, NodeRow>,
    depth: &AtomicUsize,
) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows: Vec<NodeRow> = pending.values().cloned().collect();
    let n = rows.len();
    let db = db.clone();
    let res = tokio::task::spawn_blocking(move || db.save_nodes(&rows))
        .await
        .map_err(|e| format!("writer thread failed: {e}"))
        .and_then(|r| r.map(drop).map_err(|e| e.to_string()));
    let outcome = if res.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::DB_FLUSHES.name, "table" => "service_nodes", "outcome" => outcome)
        .increment(1);
    if res.is_ok() {
        pending.clear();
        depth.fetch_sub(n, Ordering::Relaxed);
    }
    res
}
