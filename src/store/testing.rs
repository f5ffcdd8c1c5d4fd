//! Test support: a fresh, throw-away database per test, on either backend.
//!
//! Used by the storage suite (`tests/it/store.rs`) and the API tests (`tests/it/api.rs`):
//!
//! ```no_run
//! use livesteer::store::testing::TestDb;
//!
//! let sqlite = TestDb::sqlite();                 // always there
//! if let Some(pg) = TestDb::postgres() {         // None (and a note on stderr) when no server
//!     pg.ping().unwrap();                        // TestDb derefs to Db
//! }
//! # drop(sqlite);
//! ```
//!
//! SQLite: a new file in a new directory under the system temp dir, removed on drop.
//! PostgreSQL: `CREATE DATABASE livesteer_t_<random hex>` on the server named by
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//! with `DROP DATABASE … WITH (FORCE)` when the `TestDb` is dropped, also when the test
//! panics. When the server cannot be reached, `postgres()` panics if `CI=true` (CI must
//! test both backends) and otherwise prints `skipping: PostgreSQL not reachable at …`
//! and returns `None`. Each `TestDb` is independent, so tests may run in parallel.

use std::ops::Deref;
use std::path::PathBuf;

use diesel::{Connection, RunQueryDsl, pg::PgConnection};

use super::Db;
use super::target::redact_url;

/// The server used when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connections per test pool.
const TEST_POOL_SIZE: u32 = 4;

/// A database that exists for one test.
pub struct TestDb {
    db: Option<Db>,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    PgDatabase { admin_url: String, name: String },
}

impl TestDb {
    /// A migrated SQLite database in a fresh temporary file.
    pub fn sqlite() -> TestDb {
        let db = TestDb::sqlite_unmigrated();
        db.run_migrations()
            .expect("migrate the test SQLite database");
        db
    }

    /// A SQLite database in a fresh temporary file, without any table.
    pub fn sqlite_unmigrated() -> TestDb {
        let dir = std::env::temp_dir().join(format!(
            "livesteer-test-{}-{}",
            std::process::id(),
            random_hex()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let url = format!("sqlite://{}", dir.join("store.db").display());
        let mut test_db = TestDb {
            db: None,
            url,
            cleanup: Cleanup::Dir(dir),
        };
        test_db.reopen();
        test_db
    }

    /// A migrated PostgreSQL database created for this test, or `None` when no server
    /// is reachable (outside CI).
    pub fn postgres() -> Option<TestDb> {
        let db = TestDb::postgres_unmigrated()?;
        db.run_migrations()
            .expect("migrate the test PostgreSQL database");
        Some(db)
    }

    /// A PostgreSQL database created for this test, without any table, or `None` when
    /// no server is reachable (outside CI).
    pub fn postgres_unmigrated() -> Option<TestDb> {
        let admin_url = postgres_admin_url();
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(conn) => conn,
            Err(e) => {
                let cause = super::error::one_line(&e.to_string());
                let shown = redact_url(&admin_url);
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "PostgreSQL not reachable at {shown}: {cause} \
                         (CI=true requires it; start it or set TEST_DATABASE_URL)"
                    );
                }
                eprintln!("skipping: PostgreSQL not reachable at {shown}: {cause}");
                return None;
            }
        };
        let name = format!("livesteer_t_{}", random_hex());
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
        drop(admin);

        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        let mut test_db = TestDb {
            db: None,
            url: url.to_string(),
            cleanup: Cleanup::PgDatabase { admin_url, name },
        };
        test_db.reopen();
        Some(test_db)
    }

    /// The database.
    pub fn db(&self) -> &Db {
        self.db.as_ref().expect("TestDb holds a Db until dropped")
    }

    /// The URL the database was opened with (for `Db::connect` in a test).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Simulates a restart: drops the current `Db` (closing its pool) and connects
    /// again to the same database, without running migrations.
    pub fn reopen(&mut self) -> &Db {
        self.db = None;
        let db = Db::connect(&self.url, TEST_POOL_SIZE)
            .unwrap_or_else(|e| panic!("open the test database: {e}"));
        self.db.insert(db)
    }
}

impl Deref for TestDb {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Close the pool before removing what it points at.
        self.db = None;
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    eprintln!("warning: remove test directory {}: {e}", dir.display());
                }
            }
            Cleanup::PgDatabase { admin_url, name } => {
                let dropped = PgConnection::establish(admin_url)
                    .map_err(|e| e.to_string())
                    .and_then(|mut admin| {
                        diesel::sql_query(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                        .map_err(|e| e.to_string())
                    });
                if let Err(e) = dropped {
                    eprintln!(
                        "warning: drop test database {name}: {}",
                        super::error::one_line(&e)
                    );
                }
            }
        }
    }
}

impl TestDb {
    /// PostgreSQL only: a database outage and its end. `false` makes the database refuse new
    /// connections (`ALTER DATABASE … ALLOW_CONNECTIONS false`) and ends every open one
    /// (`pg_terminate_backend`); `true` lets connections in again.
    pub fn set_connections_allowed(&self, allowed: bool) {
        let Cleanup::PgDatabase { admin_url, name } = &self.cleanup else {
            panic!("set_connections_allowed is for PostgreSQL test databases")
        };
        let mut admin = PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", redact_url(admin_url)));
        diesel::sql_query(format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allowed}"
        ))
        .execute(&mut admin)
        .unwrap_or_else(|e| panic!("alter database {name}: {e}"));
        if !allowed {
            diesel::sql_query(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("end the connections to {name}: {e}"));
        }
    }
}

impl TestDb {
    /// PostgreSQL only: ends the connections to this database whose last statement starts
    /// with `prefix` (e.g. `LISTEN`), as a network failure would; returns how many.
    pub fn end_connections(&self, prefix: &str) -> usize {
        #[derive(diesel::QueryableByName)]
        struct Ended {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let Cleanup::PgDatabase { admin_url, name } = &self.cleanup else {
            panic!("end_connections is for PostgreSQL test databases")
        };
        let mut admin = PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", redact_url(admin_url)));
        let ended: Ended = diesel::sql_query(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = $1 AND query LIKE $2 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .bind::<diesel::sql_types::Text, _>(format!("{prefix}%"))
        .get_result(&mut admin)
        .unwrap_or_else(|e| panic!("end the connections to {name}: {e}"));
        ended.n as usize
    }
}

/// The server for test databases: `TEST_DATABASE_URL`, or the local default.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_string())
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}
