//! SQLite WAL checkpoints off the commit path.
//!
//! By default SQLite runs a checkpoint inside whichever commit finds the WAL past 1,000 pages:
//! that commit copies the pages into the database file and syncs it before it returns, and
//! whoever waits for the commit (a stream create waiting for its acknowledgement) waits with
//! it. So each SQLite [`super::Db`] has a thread of its own that runs a PASSIVE checkpoint
//! every [`INTERVAL`] on a connection of its own, and the pool's connections have
//! `wal_autocheckpoint = 0`: a commit only appends to the WAL and syncs it. PASSIVE copies what
//! no reader still needs without waiting for readers or writers, and once it has copied all of
//! it the next commit starts the WAL from its beginning again, so the WAL stays as small as
//! the writes of an interval.
//!
//! When the last clone of the `Db` is dropped the thread ends at its next tick; SQLite
//! checkpoints what is left when the last connection to the file closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;

/// How often the WAL is copied into the database file.
pub(super) const INTERVAL: Duration = Duration::from_millis(200);

/// What each pooled SQLite connection runs when a checkpointer serves its file.
pub(super) const POOL_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";

/// The checkpoint thread of one SQLite file; stops it when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Opens a connection to `open` and starts the thread. `None` when either fails: the pool's
    /// connections then keep SQLite's own checkpoints.
    pub(super) fn start(open: &str) -> Option<Checkpointer> {
        let mut conn = match SqliteConnection::establish(open) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint connection; commits checkpoint");
                return None;
            }
        };
        if let Err(e) = conn.batch_execute("PRAGMA busy_timeout = 5000;") {
            tracing::warn!(error = %e, "SQLite checkpoint connection; commits checkpoint");
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(INTERVAL);
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!(error = %e, "SQLite checkpoint failed; tried again next tick");
                    }
                }
            });
        match spawned {
            Ok(_) => Some(Checkpointer { stop }),
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint thread; commits checkpoint");
                None
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
