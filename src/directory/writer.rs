//! Writes registered nodes behind the heartbeat handler: changes are coalesced by node id and
//! upserted in one transaction per interval; a failed write is kept, merged with newer changes
//! and retried with backoff. Losing the last interval in a crash costs nothing lasting: nodes
//! heartbeat again within their timeout.

use std::collections::HashMap;
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
        tokio::spawn(run(db, rx, interval));
        NodeWriter { tx }
    }

    /// Queues a node's state.
    pub fn save(&self, row: NodeRow) {
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

async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Msg>, interval: Duration) {
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
                    let _ = write(&db, &mut pending).await;
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
                        if newer {
                            pending.insert(row.id.clone(), row);
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
        match write(&db, &mut pending).await {
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

async fn write(db: &Db, pending: &mut HashMap<String, NodeRow>) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows: Vec<NodeRow> = pending.values().cloned().collect();
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
    }
    res
}
