//! `on_both_backends!`: one suite function, run as a `sqlite_*` and a `postgres_*` test.
//!
//! Each test gets a fresh database (`livesteer::store::testing::TestDb`), so the tests run in
//! parallel. PostgreSQL: `TEST_DATABASE_URL` or `postgres://postgres@127.0.0.1:5432/postgres`;
//! when it is unreachable the `postgres_*` test prints `skipping: …` and passes, except with
//! `CI=true`, where it fails (both decided by `TestDb::postgres`).
//!
//! The form names what the suite takes:
//!
//! ```ignore
//! // `fn suite(db: &Db)`, on a migrated database:
//! on_both_backends!(suite_ping(&Db) => sqlite_ping, postgres_ping);
//! // `fn suite(db: &Db)`, on a database without any table:
//! on_both_backends!(suite_migrations_idempotent(&Db, unmigrated) => sqlite_…, postgres_…);
//! // `fn suite(db: TestDb)`, on a migrated database: for its URL (a `TestApp` over it, the
//! // binary), `reopen` (a restart) or `set_connections_allowed`:
//! on_both_backends!(suite_restart(TestDb) => sqlite_restart, postgres_restart);
//! // `async fn suite(db: TestDb)`, under the given test attribute:
//! on_both_backends!(#[tokio::test] async push_then_play(TestDb) => sqlite_…, postgres_…);
//! ```
//!
//! The test names are given in full, so each keeps the name CI and the docs know it by.

macro_rules! on_both_backends {
    ($suite:ident(&Db) => $sqlite:ident, $postgres:ident) => {
        $crate::backends::on_both_backends!(@sync sqlite postgres $suite(&) => $sqlite, $postgres);
    };
    ($suite:ident(&Db, unmigrated) => $sqlite:ident, $postgres:ident) => {
        $crate::backends::on_both_backends!(
            @sync sqlite_unmigrated postgres_unmigrated $suite(&) => $sqlite, $postgres
        );
    };
    ($suite:ident(TestDb) => $sqlite:ident, $postgres:ident) => {
        $crate::backends::on_both_backends!(@sync sqlite postgres $suite() => $sqlite, $postgres);
    };
    (#[$attr:meta] async $suite:ident(TestDb) => $sqlite:ident, $postgres:ident) => {
        #[$attr]
        async fn $sqlite() {
            let db = ::livesteer::store::testing::TestDb::sqlite();
            assert_eq!(db.backend(), ::livesteer::store::Backend::Sqlite);
            $suite(db).await;
        }

        #[$attr]
        async fn $postgres() {
            if let Some(db) = ::livesteer::store::testing::TestDb::postgres() {
                assert_eq!(db.backend(), ::livesteer::store::Backend::Postgres);
                $suite(db).await;
            }
        }
    };
    // `$($by)*` is `&` to lend the database, nothing to hand it over.
    (@sync $new_sqlite:ident $new_postgres:ident $suite:ident($($by:tt)*) => $sqlite:ident, $postgres:ident) => {
        #[test]
        fn $sqlite() {
            let db = ::livesteer::store::testing::TestDb::$new_sqlite();
            assert_eq!(db.backend(), ::livesteer::store::Backend::Sqlite);
            $suite($($by)* db);
        }

        #[test]
        fn $postgres() {
            if let Some(db) = ::livesteer::store::testing::TestDb::$new_postgres() {
                assert_eq!(db.backend(), ::livesteer::store::Backend::Postgres);
                $suite($($by)* db);
            }
        }
    };
}

pub(crate) use on_both_backends;
