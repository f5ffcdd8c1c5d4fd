//! Streams in memory, persisted behind the request.
//!
//! A stream is created or ended in memory at once (the hot path never waits on the database);
//! [`WriteBehind`] coalesces changes and writes them in batches. A batch that fails to write is
//! kept and retried, merged with newer changes, so nothing accepted is dropped while the process
//! lives; [`WriteBehind::flush`] waits until everything accepted so far is written (shutdown,
//! tests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::metrics as m;
use crate::store::{Db, StreamRow};

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    Live,
    Ended,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Live => "live",
            StreamState::Ended => "ended",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(StreamState::Live),
            "ended" => Some(StreamState::Ended),
            _ => None,
        }
    }
}

/// One stream: its key, its anchor and the providers it is pushed to (primary first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stream {
    pub id: String,
    pub anchor_id: String,
    pub region: String,
    pub providers: Vec<String>,
    pub state: StreamState,
    pub reason: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub updated_ms: i64,
}

impl Stream {
    fn to_row(&self) -> StreamRow {
        StreamRow {
            id: self.id.clone(),
            anchor_id: self.anchor_id.clone(),
            region: self.region.clone(),
            providers: StreamRow::encode_providers(&self.providers),
            state: self.state.as_str().to_string(),
            reason: self.reason.clone(),
            started_ms: self.started_ms,
            ended_ms: self.ended_ms,
            updated_ms: self.updated_ms,
        }
    }

    /// A stored row; `None` for a state this version does not know.
    pub fn from_row(row: &StreamRow) -> Option<Stream> {
        Some(Stream {
            id: row.id.clone(),
            anchor_id: row.anchor_id.clone(),
            region: row.region.clone(),
            providers: row.provider_ids(),
            state: StreamState::parse(&row.state)?,
            reason: row.reason.clone(),
            started_ms: row.started_ms,
            ended_ms: row.ended_ms,
            updated_ms: row.updated_ms,
        })
    }
}

/// Live and recently ended streams, by key.
#[derive(Debug, Default)]
pub struct StreamTable {
    inner: RwLock<HashMap<String, Arc<Stream>>>,
}

impl StreamTable {
    /// A stream by key.
    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.read().get(id).cloned()
    }

    /// Inserts or replaces a stream.
    pub fn put(&self, stream: Stream) -> Arc<Stream> {
        let s = Arc::new(stream);
        self.write().insert(s.id.clone(), s.clone());
        s
    }

    /// Marks a stream ended; `None` if unknown, the stream as it was if already ended.
    pub fn end(&self, id: &str, now_ms: i64, reason: &str) -> Option<(Arc<Stream>, bool)> {
        let mut map = self.write();
        let cur = map.get(id)?.clone();
        if cur.state == StreamState::Ended {
            return Some((cur, false));
        }
        let mut s = (*cur).clone();
        s.state = StreamState::Ended;
        s.ended_ms = Some(now_ms);
        s.updated_ms = now_ms;
        s.reason = reason.to_string();
        let s = Arc::new(s);
        map.insert(id.to_string(), s.clone());
        Some((s, true))
    }

    /// Drops ended streams that ended before `cutoff_ms`; returns how many.
    pub fn sweep_ended(&self, cutoff_ms: i64) -> usize {
        let mut map = self.write();
        let before = map.len();
        map.retain(|_, s| s.state != StreamState::Ended || s.ended_ms.unwrap_or(0) >= cutoff_ms);
        before - map.len()
    }

    /// Counts by state.
    pub fn counts(&self) -> HashMap<StreamState, usize> {
        let mut out = HashMap::new();
        for s in self.read().values() {
            *out.entry(s.state).or_insert(0) += 1;
        }
        out
    }

    /// Every live stream (what the probes visit).
    pub fn live(&self) -> Vec<Arc<Stream>> {
        self.read()
            .values()
            .filter(|s| s.state == StreamState::Live)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Stream>>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Stream>>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

enum Msg {
    Save(StreamRow),
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Sends stream changes to the background writer.
#[derive(Debug, Clone)]
pub struct WriteBehind {
    tx: mpsc::UnboundedSender<Msg>,
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

/// Most rows written in one transaction.
const MAX_BATCH: usize = 500;

impl WriteBehind {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(db: Db, interval: Duration) -> (WriteBehind, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(db, rx, depth.clone(), interval));
        (WriteBehind { tx, depth }, task)
    }

    /// Queues a stream's current state for writing.
    pub fn save(&self, stream: &Stream) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => "streams")
            .set(self.depth.load(Ordering::Relaxed) as f64);
        if self.tx.send(Msg::Save(stream.to_row())).is_err() {
            tracing::error!(stream = %stream.id, "write-behind task is gone; change not persisted");
        }
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| "write-behind task is gone".to_string())?;
        done.await
            .map_err(|_| "write-behind task stopped".to_string())?
    }

    /// Changes accepted and not yet written.
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
    // Pending rows by stream id: a later change to the same stream replaces an earlier one.
    let mut pending: HashMap<String, StreamRow> = HashMap::new();
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
                    // Senders gone: write what is left and stop.
                    let _ = write(&db, &mut pending, &depth).await;
                    break;
                }
                Err(_) => None,
            }
        };
        let mut flush_now = msg.is_none();
        let mut take = |m: Msg, pending: &mut HashMap<String, StreamRow>| match m {
            Msg::Save(row) => {
                if let Some(prev) = pending.insert(row.id.clone(), row) {
                    // Coalesced: the replaced change no longer needs writing.
                    let _ = prev;
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
                tracing::warn!(error = %e, rows = pending.len(), "stream write failed; will retry");
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
    pending: &mut HashMap<String, StreamRow>,
    depth: &AtomicUsize,
) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let rows: Vec<StreamRow> = pending.values().cloned().collect();
    let n = rows.len();
    let db = db.clone();
    let res = tokio::task::spawn_blocking(move || db.save_streams(&rows))
        .await
        .map_err(|e| format!("writer thread failed: {e}"))
        .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string()));
    let outcome = if res.is_ok() { "ok" } else { "error" };
    metrics::counter!(m::DB_FLUSHES.name, "table" => "streams", "outcome" => outcome).increment(1);
    if res.is_ok() {
        pending.clear();
        depth.fetch_sub(n, Ordering::Relaxed);
        metrics::gauge!(m::WRITE_QUEUE.name, "table" => "streams")
            .set(depth.load(Ordering::Relaxed) as f64);
    }
    res
}
