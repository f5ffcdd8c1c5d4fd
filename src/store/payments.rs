//! The payment ledger: completed payments from the payment centres, one row per
//! (centre, payment id), and the records refused because another one holds that key.
//!
//! Unlike the rest of the store this is written on the request path, because a centre may
//! only clear its outbox once a record is durable: [`Db::store_payments`] commits before the
//! answer is sent (on SQLite with `synchronous = FULL` for that transaction, so the commit
//! survives power loss as well as a killed process).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::schema::{payment_conflicts, payments};
use super::{Db, DbConn, StoreError};

/// A row of `payments`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = payments)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct PaymentRow {
    pub centre: String,
    pub payment_id: String,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub provider: String,
    pub status: String,
    pub created_ms: i64,
    pub received_ms: i64,
}

impl PaymentRow {
    /// Whether two rows are the same record (the time livesteer received it aside).
    pub fn same_record(&self, other: &PaymentRow) -> bool {
        self.centre == other.centre
            && self.payment_id == other.payment_id
            && self.user_id == other.user_id
            && self.amount_minor == other.amount_minor
            && self.currency == other.currency
            && self.provider == other.provider
            && self.status == other.status
            && self.created_ms == other.created_ms
    }
}

/// What [`Db::store_payments`] did with each record of a batch, in batch order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Stored now.
    Inserted,
    /// The same record was already stored.
    Duplicate,
    /// A different record is stored under this id; it is kept and this one refused.
    Conflict(Box<PaymentRow>),
}

/// Counts and sum of one currency (see [`Db::reconcile_payments`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CurrencyTotal {
    pub currency: String,
    pub count: i64,
    pub sum_minor: i64,
}

impl Db {
    /// Stores a batch in one transaction: each record is inserted unless its
    /// (centre, payment id) exists, in which case it is a duplicate when equal to the stored
    /// one and a conflict otherwise (the refused record is written to `payment_conflicts` as
    /// `conflict_json` gives it). Returns once the transaction is committed and durable.
    pub fn store_payments(
        &self,
        rows: &[PaymentRow],
        conflict_json: &dyn Fn(&PaymentRow) -> String,
    ) -> Result<Vec<PaymentOutcome>, StoreError> {
        const OP: &str = "store payments";
        let mut conn = self.conn(OP)?;
        let sqlite = matches!(&*conn, DbConn::Sqlite(_));
        if sqlite {
            (*conn)
                .batch_execute("PRAGMA synchronous = FULL")
                .map_err(StoreError::query(OP))?;
        }
        let result = super::write_transaction!(&mut *conn, |c| {
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let inserted = diesel::insert_into(payments::table)
                    .values(row)
                    .on_conflict((payments::centre, payments::payment_id))
                    .do_nothing()
                    .execute(c)?;
                if inserted == 1 {
                    out.push(PaymentOutcome::Inserted);
                    continue;
                }
                let stored: PaymentRow = payments::table
                    .find((&row.centre, &row.payment_id))
                    .select(PaymentRow::as_select())
                    .first(c)?;
                if stored.same_record(row) {
                    out.push(PaymentOutcome::Duplicate);
                } else {
                    diesel::insert_into(payment_conflicts::table)
                        .values((
                            payment_conflicts::centre.eq(&row.centre),
                            payment_conflicts::payment_id.eq(&row.payment_id),
                            payment_conflicts::record.eq(conflict_json(row)),
                            payment_conflicts::received_ms.eq(row.received_ms),
                        ))
                        .execute(c)?;
                    out.push(PaymentOutcome::Conflict(Box::new(stored)));
                }
            }
            Ok(out)
        })
        .map_err(StoreError::query(OP));
        if sqlite {
            // Back to the pool's setting; a failure here leaves the connection safer, not worse.
            let _ = (*conn).batch_execute("PRAGMA synchronous = NORMAL");
        }
        result
    }

    /// One stored payment.
    pub fn get_payment(
        &self,
        centre: &str,
        payment_id: &str,
    ) -> Result<Option<PaymentRow>, StoreError> {
        const OP: &str = "get payment";
        let mut conn = self.conn(OP)?;
        payments::table
            .find((centre, payment_id))
            .select(PaymentRow::as_select())
            .first(&mut *conn)
            .optional()
            .map_err(StoreError::query(OP))
    }

    /// Every payment of a centre, oldest first (tests and audits).
    pub fn payments_of(&self, centre: &str) -> Result<Vec<PaymentRow>, StoreError> {
        const OP: &str = "list payments";
        let mut conn = self.conn(OP)?;
        payments::table
            .filter(payments::centre.eq(centre))
            .order((payments::created_ms, payments::payment_id))
            .select(PaymentRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }

    /// Refused records of a centre: (payment id, the record as JSON).
    pub fn payment_conflicts_of(&self, centre: &str) -> Result<Vec<(String, String)>, StoreError> {
        const OP: &str = "list payment conflicts";
        let mut conn = self.conn(OP)?;
        payment_conflicts::table
            .filter(payment_conflicts::centre.eq(centre))
            .order(payment_conflicts::id)
            .select((payment_conflicts::payment_id, payment_conflicts::record))
            .load(&mut *conn)
            .map_err(StoreError::query(OP))
    }

    /// Count and sum per currency of a centre's payments created in `[from_ms, to_ms)`,
    /// by currency.
    pub fn reconcile_payments(
        &self,
        centre: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CurrencyTotal>, StoreError> {
        const OP: &str = "reconcile payments";
        let mut conn = self.conn(OP)?;
        let rows: Vec<(String, i64, i64)> = payments::table
            .filter(payments::centre.eq(centre))
            .filter(payments::created_ms.ge(from_ms))
            .filter(payments::created_ms.lt(to_ms))
            .group_by(payments::currency)
            .select((
                payments::currency,
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)",
                ),
            ))
            .order(payments::currency)
            .load(&mut *conn)
            .map_err(StoreError::query(OP))?;
        Ok(rows
            .into_iter()
            .map(|(currency, count, sum_minor)| CurrencyTotal {
                currency,
                count,
                sum_minor,
            })
            .collect())
    }
}
