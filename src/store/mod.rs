//! Storage: one [`Db`] over SQLite (one node) and PostgreSQL (several replicas).
//!
//! The vaultwarden way of diesel: one [`schema`], a `#[derive(diesel::MultiConnection)]`
//! enum ([`DbConn`]) over the two connection types, a migration set per backend with
//! mirrored directory names (`migrations/sqlite`, `migrations/postgres`, see
//! `migrations/README.md`), embedded in the binary and applied by [`Db::run_migrations`].
//!
//! # Backend selection
//!
//! The backend is chosen from the URL's scheme, never by trying each backend in turn
//! (SQLite opens any string as a file, and the derived `establish` reports a PostgreSQL
//! server that is down as "invalid connection url"):
//!
//! | URL | backend |
//! |---|---|
//! | `sqlite://path`, `sqlite:path`, `file:path[?query]`, a bare path ending in `.db`, `.sqlite` or `.sqlite3` | SQLite; the file's parent directory is created if missing |
//! | `postgres://…`, `postgresql://…` | PostgreSQL; `connect_timeout=10` is added unless the URL sets one |
//! | anything else | [`StoreError::UnsupportedScheme`] naming the scheme |
//!
//! In-memory SQLite is refused (each pooled connection would see its own database).
//! Every SQLite connection runs `PRAGMA busy_timeout=5000; journal_mode=WAL;
//! synchronous=NORMAL; foreign_keys=ON` when the pool opens it, and `wal_autocheckpoint=0`:
//! the WAL is copied into the database file by a thread of the [`Db`]'s own, never inside a
//! commit (see `checkpoint`).
//!
//! # Error policy
//!
//! Every fallible call returns [`StoreError`]. Its message names the operation
//! (`save streams`, `acquire lease`, …) and carries the real cause from the driver on
//! one line, without a trailing period, e.g. `connect to PostgreSQL at
//! postgres://postgres@127.0.0.1:1/x?connect_timeout=10: connection to server at
//! "127.0.0.1", port 1 failed: Connection refused; …`. Passwords in URLs are masked.
//! [`Db::connect`] opens one connection before building the pool, so a bad URL or a
//! server that is down fails at once with the driver's message rather than after the
//! pool's time-out. Absence is not an error: lookups return `Option`, and updates that
//! may match nothing return `bool`. Nothing here panics on database input; an
//! unreadable JSON list column reads as an empty list (and is logged).
//!
//! # Calling convention
//!
//! All methods are synchronous and block on the database: async code calls them through
//! [`Db::call`] (a blocking thread; a dedicated thread may call them directly), never from the
//! request hot path, which reads memory only. [`Db`] is a cheap `Clone` over an r2d2 pool.
//!
//! Backend-specific code is confined to a few `match`es on [`DbConn`]: upserts (which
//! diesel's multi-backend does not support, so the same DSL is compiled once per
//! backend), the write-transaction kind (`BEGIN IMMEDIATE` on SQLite), and locks.

mod changes;
mod checkpoint;
mod cluster;
mod error;
mod leases;
mod models;
mod nodes;
mod payments;
mod policy;
mod rooms;
pub mod schema;
mod scores;
mod streams;
mod target;
#[doc(hidden)]
pub mod testing;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use changes::{CONTROL_CHANNEL, Change, Listener, ROOMS_CHANNEL, STREAMS_CHANNEL};
pub use error::StoreError;
pub use models::{AnchorRow, PolicyVersionRow, StreamRow};
pub use nodes::NodeRow;
pub use payments::{CurrencyTotal, PaymentOutcome, PaymentRow};
pub use rooms::RoomRow;
pub use scores::ScoreWindowRow;
use target::Target;

/// The SQLite migration set (`migrations/sqlite`).
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The PostgreSQL migration set (`migrations/postgres`), mirroring the SQLite one.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Statements run on every new SQLite connection.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                              PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// How long a caller waits for a pooled connection. Short, so that while the database is
/// unreachable a request that needs it (readiness, payments, a commit) answers 503 within a
/// second instead of hanging; the writers and jobs retry on their own schedules.
const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(400);

/// Key of the PostgreSQL advisory lock held while migrations run, so replicas
/// starting together apply them once.
const PG_MIGRATION_LOCK_KEY: i64 = 0x6c69_7665_7374_6572; // "livester"

/// A connection to either backend. Queries that both backends accept the same way run on
/// it directly; the rest `match` on it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL.
    Postgres(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

/// The database backend in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SQLite (single node).
    Sqlite,
    /// PostgreSQL (shared by replicas).
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// Runs `$body` with `$c` bound to the concrete connection, compiling the same diesel
/// DSL once per backend (for what `MultiBackend` lacks, such as `ON CONFLICT`).
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Postgres($c) => $body,
            $crate::store::DbConn::Sqlite($c) => $body,
        }
    };
}

/// Runs `$body` in a write transaction on the concrete connection: `BEGIN IMMEDIATE` on
/// SQLite (so the write lock is taken up front and `busy_timeout` applies, instead of a
/// read transaction failing to upgrade), a plain transaction on PostgreSQL.
macro_rules! write_transaction {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Postgres(pg) => {
                diesel::Connection::transaction(pg, |$c| -> diesel::QueryResult<_> { $body })
            }
            $crate::store::DbConn::Sqlite(lite) => {
                lite.immediate_transaction(|$c| -> diesel::QueryResult<_> { $body })
            }
        }
    };
}

pub(crate) use {per_backend, write_transaction};

/// Opens connections for the pool, picking the connection type from the parsed URL.
#[derive(Debug)]
struct ConnManager {
    target: Target,
}

impl ConnManager {
    fn establish(&self) -> diesel::ConnectionResult<DbConn> {
        match &self.target {
            Target::Sqlite { open, .. } => SqliteConnection::establish(open).map(DbConn::Sqlite),
            Target::Postgres { url } => PgConnection::establish(url).map(DbConn::Postgres),
        }
    }
}

impl ManageConnection for ConnManager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        self.establish()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Per-connection set-up: the SQLite pragmas, and no checkpoints in commits where a
/// checkpoint thread serves the file.
#[derive(Debug)]
struct ConnSetup {
    checkpointed: bool,
}

impl ConnSetup {
    fn apply(&self, conn: &mut DbConn) -> diesel::QueryResult<()> {
        match conn {
            DbConn::Sqlite(c) => {
                c.batch_execute(SQLITE_PRAGMAS)?;
                if self.checkpointed {
                    c.batch_execute(checkpoint::POOL_PRAGMAS)?;
                }
                Ok(())
            }
            DbConn::Postgres(_) => Ok(()),
        }
    }
}

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for ConnSetup {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        self.apply(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The database: a pool of connections to one SQLite file or one PostgreSQL database.
///
/// Cheap to clone (the pool is shared). All methods block; see the module docs.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnManager>,
    backend: Backend,
    location: Arc<str>,
    /// Where new connections go (a listener opens its own).
    target: Arc<Target>,
    /// SQLite: the thread that checkpoints the WAL, stopped when the last clone goes.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .field("location", &self.location)
            .field("pool", &self.pool.state())
            .finish()
    }
}

impl Db {
    /// Runs `f` with this database on a blocking thread: how async code (handlers, jobs) calls
    /// the database without holding up the runtime's workers. A task that fails to finish is
    /// [`StoreError::Task`].
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Connects to the database named by `url` with at most `pool_size` connections
    /// (at least 1). The backend is chosen from the URL scheme (see the module docs);
    /// one connection is opened at once so that a wrong URL or a server that is down
    /// fails here with the driver's own message. Does not run migrations.
    pub fn connect(url: &str, pool_size: u32) -> Result<Db, StoreError> {
        let target = Target::parse(url)?;
        let backend = target.backend();
        let location = target.redacted();
        if let Target::Sqlite { path, .. } = &target {
            target::ensure_parent_dir(path)?;
        }

        let manager = ConnManager {
            target: target.clone(),
        };
        let mut first = manager.establish().map_err(|cause| StoreError::Connect {
            backend,
            url: location.clone(),
            cause,
        })?;
        // Sets WAL once before the pool opens connections in parallel.
        ConnSetup {
            checkpointed: false,
        }
        .apply(&mut first)
        .map_err(StoreError::query("configure the SQLite connection"))?;
        drop(first);
        let checkpointer = match &target {
            Target::Sqlite { open, .. } => checkpoint::Checkpointer::start(open).map(Arc::new),
            Target::Postgres { .. } => None,
        };

        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(POOL_CHECKOUT_TIMEOUT)
            .connection_customizer(Box::new(ConnSetup {
                checkpointed: checkpointer.is_some(),
            }))
            .build_unchecked(manager);

        tracing::info!(%backend, location = %location, pool_size = pool_size.max(1), "database connected");
        Ok(Db {
            pool,
            backend,
            location: location.into(),
            target: Arc::new(target),
            _checkpointer: checkpointer,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the database is, for logs: the SQLite path or the PostgreSQL URL with the
    /// password masked.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The pool's connections: `(open, idle, max)`. Takes the pool's lock for a moment; never
    /// waits for a connection.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let st = self.pool.state();
        (st.connections, st.idle_connections, self.pool.max_size())
    }

    /// Checks that a connection can be had and answers `SELECT 1`.
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn("ping")?;
        conn.batch_execute("SELECT 1")
            .map_err(StoreError::query("ping"))
    }

    /// Applies the pending migrations of this backend's set and returns their names
    /// (e.g. `2026-11-25-000001_init`), oldest first; empty when the schema is current.
    ///
    /// The whole run is one transaction (`BEGIN IMMEDIATE` on SQLite, an advisory lock
    /// on PostgreSQL), so processes starting together apply the set once, and a failed
    /// run leaves the schema as it was. A migration therefore cannot use statements that
    /// refuse a transaction (`CREATE INDEX CONCURRENTLY`, `PRAGMA foreign_keys`).
    pub fn run_migrations(&self) -> Result<Vec<String>, StoreError> {
        let backend = self.backend;
        let mut conn = self.conn("run migrations")?;
        let applied = match &mut *conn {
            // BEGIN IMMEDIATE: a second process waits (busy_timeout), then finds nothing pending.
            DbConn::Sqlite(c) => {
                c.immediate_transaction(|c| apply_migrations(c, SQLITE_MIGRATIONS))
            }
            DbConn::Postgres(c) => c.transaction(|c| {
                // Released at commit or rollback; a second replica waits here, then
                // finds nothing pending.
                let lock = format!("SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK_KEY})");
                diesel::sql_query(lock).execute(c)?;
                apply_migrations(c, POSTGRES_MIGRATIONS)
            }),
        }
        .map_err(|cause| StoreError::Migration { backend, cause })?;
        for name in &applied {
            tracing::info!(%backend, migration = %name, "migration applied");
        }
        Ok(applied)
    }

    /// A pooled connection for `op` (named in the error).
    fn conn(&self, op: &'static str) -> Result<PooledConnection<ConnManager>, StoreError> {
        self.pool.get().map_err(StoreError::pool(op))
    }
}

fn apply_migrations<C, DB>(
    conn: &mut C,
    source: EmbeddedMigrations,
) -> diesel::migration::Result<Vec<String>>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let pending = conn.pending_migrations(source)?;
    let names = pending.iter().map(|m| m.name().to_string()).collect();
    conn.run_migrations(&pending)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    #[tokio::test]
    async fn call_runs_on_a_blocking_thread_and_reports_a_failed_task() {
        let db = super::testing::TestDb::sqlite();
        let db: &super::Db = &db;
        db.call(|db| db.ping()).await.unwrap();
        let on_worker = std::thread::current().id();
        let ran_on = db.call(|_| Ok(std::thread::current().id())).await.unwrap();
        assert_ne!(ran_on, on_worker);
        let failed = db
            .call(|_| -> Result<(), super::StoreError> { panic!("a database call panicked") })
            .await
            .unwrap_err();
        assert!(matches!(failed, super::StoreError::Task(_)), "{failed:?}");
    }

    fn migration_dirs(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                for file in ["up.sql", "down.sql"] {
                    assert!(
                        entry.path().join(file).is_file(),
                        "{backend}/{name}/{file} is missing"
                    );
                }
                name
            })
            .collect()
    }

    #[test]
    fn migration_sets_mirror_each_other() {
        let sqlite = migration_dirs("sqlite");
        let postgres = migration_dirs("postgres");
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "migrations/sqlite and migrations/postgres must hold the same names"
        );
    }

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }

    fn sqlite_setting(conn: &mut super::SqliteConnection, pragma: &str) -> String {
        use diesel::RunQueryDsl;
        diesel::sql_query(format!(
            "SELECT CAST((SELECT * FROM pragma_{pragma}) AS TEXT) AS value"
        ))
        .get_result::<Setting>(conn)
        .unwrap_or_else(|e| panic!("read PRAGMA {pragma}: {e}"))
        .value
    }

    #[test]
    fn sqlite_connections_get_the_pragmas() {
        let db = super::testing::TestDb::sqlite();
        // Several connections at once, so more than the first one is checked.
        let mut conns: Vec<_> = (0..3).map(|_| db.conn("test").unwrap()).collect();
        for conn in &mut conns {
            let super::DbConn::Sqlite(c) = &mut **conn else {
                panic!("expected a SQLite connection")
            };
            assert_eq!(sqlite_setting(c, "busy_timeout"), "5000");
            assert_eq!(sqlite_setting(c, "journal_mode"), "wal");
            assert_eq!(sqlite_setting(c, "synchronous"), "1"); // NORMAL
            assert_eq!(sqlite_setting(c, "foreign_keys"), "1");
            #[derive(diesel::QueryableByName)]
            struct Autocheckpoint {
                #[diesel(sql_type = diesel::sql_types::Integer)]
                wal_autocheckpoint: i32,
            }
            let a: Autocheckpoint =
                diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA wal_autocheckpoint"), c)
                    .unwrap();
            assert_eq!(a.wal_autocheckpoint, 0, "commits never checkpoint");
        }
    }

    /// Commits only append to the WAL; the database's own thread copies it into the file.
    #[test]
    fn the_wal_is_checkpointed_by_the_dbs_thread_not_by_commits() {
        use diesel::RunQueryDsl;
        let db = super::testing::TestDb::sqlite();
        let path = std::path::PathBuf::from(db.url().strip_prefix("sqlite://").unwrap());
        let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        // Let the thread copy what the migrations wrote, then note the file's size.
        std::thread::sleep(super::checkpoint::INTERVAL * 3);
        let before = size(&path);
        {
            let mut conn = db.conn("test").unwrap();
            let super::DbConn::Sqlite(c) = &mut *conn else {
                panic!("expected a SQLite connection")
            };
            diesel::sql_query("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB)")
                .execute(c)
                .unwrap();
            // About 2,000 pages: past SQLite's default checkpoint threshold of 1,000.
            for _ in 0..200 {
                diesel::sql_query("INSERT INTO filler (body) VALUES (zeroblob(40000))")
                    .execute(c)
                    .unwrap();
            }
        }
        assert!(size(&wal) > 4_000_000, "the WAL holds the commits");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size(&path) < before + 4_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {} bytes (WAL {} bytes)",
                size(&path),
                size(&wal)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn foreign_keys_are_enforced() {
        use super::schema::streams;
        use diesel::prelude::*;

        let mut dbs = vec![super::testing::TestDb::sqlite()];
        dbs.extend(super::testing::TestDb::postgres());
        for db in &dbs {
            let mut conn = db.conn("test").unwrap();
            let result = diesel::insert_into(streams::table)
                .values((
                    streams::id.eq("s"),
                    streams::anchor_id.eq("nobody"),
                    streams::region.eq("eu"),
                    streams::providers.eq("[]"),
                    streams::state.eq("live"),
                    streams::started_ms.eq(1),
                    streams::updated_ms.eq(1),
                ))
                .execute(&mut *conn);
            assert!(
                matches!(
                    result,
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                        _
                    ))
                ),
                "{}: {result:?}",
                db.backend()
            );
        }
    }

    #[test]
    fn backend_display() {
        assert_eq!(super::Backend::Sqlite.to_string(), "SQLite");
        assert_eq!(super::Backend::Postgres.to_string(), "PostgreSQL");
    }
}
