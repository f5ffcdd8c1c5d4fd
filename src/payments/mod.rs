//! The payment sync ledger. Payment centres near users complete payments and sync them to the
//! central data centre in signed batches (`POST /v1/payments/sync`); the ledger stores each
//! record once by (centre, payment id) and answers with exactly what is stored, so the centre
//! can clear its outbox.
//!
//! - A replayed batch changes nothing: every record comes back as a duplicate.
//! - A different record under an id already stored is refused, kept aside in
//!   `payment_conflicts`, reported in the answer and counted.
//! - A batch is one database transaction, committed (durably) before the answer: a centre that
//!   gets no answer (timeout, crash) sends the same batch again and loses nothing.
//!
//! **Architecture invariant:** the one request path that waits on the database, by design;
//! validation happens before, so a bad batch never opens a transaction.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::codes::Code;
use crate::store::{CurrencyTotal, Db, PaymentOutcome, PaymentRow, StoreError};

/// Most records in one batch.
pub const MAX_BATCH: usize = 1_000;

/// One completed payment, as a centre sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRecord {
    /// The centre's payment id: 1 to 128 of `[A-Za-z0-9_.:-]`.
    pub id: String,
    /// The paying user: 1 to 128 printable characters.
    pub user: String,
    /// Amount in the currency's minor unit (cents, fen): 0 or more.
    pub amount_minor: i64,
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    /// Payment provider: 1 to 32 of `[a-z0-9_-]` (`apple`, `google_play`, `alipay`).
    pub provider: String,
    /// 1 to 32 of `[a-z_]` (`completed`, `refunded`).
    pub status: String,
    /// When the centre completed it: RFC 3339 with an offset (`2026-11-25T10:00:00Z`).
    pub created_at: String,
    /// The centre that took it; must be the batch's centre.
    pub centre: String,
}

/// `POST /v1/payments/sync`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The sending centre (its secret signs the request).
    pub centre: String,
    pub records: Vec<PaymentRecord>,
}

/// A record refused because another is stored under its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Conflict {
    pub id: String,
    pub message: String,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncAnswer {
    pub centre: String,
    /// Every record of the batch now in the ledger exactly as sent (stored now or before):
    /// the centre may clear these from its outbox.
    pub stored: Vec<String>,
    /// Of those, the ones stored by this batch.
    pub inserted: Vec<String>,
    /// Of those, the ones already stored (a replay).
    pub duplicates: Vec<String>,
    /// Refused: a different record holds the id.
    pub conflicts: Vec<Conflict>,
}

/// A bad batch, refused before any change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: Code,
    pub message: String,
}

fn invalid(code: Code, message: impl Into<String>) -> Invalid {
    Invalid {
        code,
        message: message.into(),
    }
}

/// The ledger over the database.
#[derive(Debug)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    pub fn new(db: Db) -> Ledger {
        Ledger { db }
    }

    /// Checks a batch and turns it into rows received at `now_ms`.
    pub fn validate(batch: &Batch, now_ms: i64) -> Result<Vec<PaymentRow>, Invalid> {
        if batch.records.is_empty() {
            return Err(invalid(Code::EmptyBatch, "records must not be empty"));
        }
        if batch.records.len() > MAX_BATCH {
            return Err(invalid(
                Code::BatchTooLarge,
                format!(
                    "a batch holds {} records, more than the {MAX_BATCH} allowed",
                    batch.records.len()
                ),
            ));
        }
        let mut rows: Vec<PaymentRow> = Vec::with_capacity(batch.records.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, r) in batch.records.iter().enumerate() {
            let at = |field: &str, what: String| {
                invalid(Code::InvalidRecord, format!("records[{i}].{field}: {what}"))
            };
            if !valid_long_id(&r.id) {
                return Err(at(
                    "id",
                    format!(
                        "{:?} must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
                        trunc(&r.id)
                    ),
                ));
            }
            if r.centre != batch.centre {
                return Err(at(
                    "centre",
                    format!(
                        "{:?} is not the batch's centre {:?}",
                        trunc(&r.centre),
                        batch.centre
                    ),
                ));
            }
            if r.user.is_empty()
                || r.user.chars().count() > 128
                || r.user.chars().any(char::is_control)
            {
                return Err(at(
                    "user",
                    "must be 1 to 128 characters without control characters".into(),
                ));
            }
            if !(0..=1_000_000_000_000_000).contains(&r.amount_minor) {
                return Err(at(
                    "amount_minor",
                    format!("{} must be from 0 to 10^15", r.amount_minor),
                ));
            }
            if r.currency.len() != 3 || !r.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(at(
                    "currency",
                    format!(
                        "{:?} is not an ISO 4217 code (three upper-case letters)",
                        trunc(&r.currency)
                    ),
                ));
            }
            if !(1..=32).contains(&r.provider.len())
                || !r
                    .provider
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(at(
                    "provider",
                    format!(
                        "{:?} must be 1 to 32 of a-z, 0-9, '_' or '-'",
                        trunc(&r.provider)
                    ),
                ));
            }
            if !(1..=32).contains(&r.status.len())
                || !r
                    .status
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                return Err(at(
                    "status",
                    format!("{:?} must be 1 to 32 of a-z or '_'", trunc(&r.status)),
                ));
            }
            let created_ms = chrono::DateTime::parse_from_rfc3339(&r.created_at)
                .map(|t| t.timestamp_millis())
                .map_err(|e| {
                    at(
                        "created_at",
                        format!("{:?} is not an RFC 3339 time: {e}", trunc(&r.created_at)),
                    )
                })?;
            let row = PaymentRow {
                centre: batch.centre.clone(),
                payment_id: r.id.clone(),
                user_id: r.user.clone(),
                amount_minor: r.amount_minor,
                currency: r.currency.clone(),
                provider: r.provider.clone(),
                status: r.status.clone(),
                created_ms,
                received_ms: now_ms,
            };
            if let Some(&j) = seen.get(r.id.as_str()) {
                if rows[j].same_record(&row) {
                    continue;
                }
                return Err(at(
                    "id",
                    format!(
                        "{:?} appears twice in the batch with different contents",
                        r.id
                    ),
                ));
            }
            seen.insert(&r.id, rows.len());
            rows.push(row);
        }
        Ok(rows)
    }

    /// Stores checked rows in one durable transaction (blocking: call from
    /// `spawn_blocking`) and describes the outcome.
    pub fn store(&self, centre: &str, rows: &[PaymentRow]) -> Result<SyncAnswer, StoreError> {
        let outcomes = self.db.store_payments(rows, &|r| {
            serde_json::to_string(r).unwrap_or_else(|_| "{}".into())
        })?;
        let mut answer = SyncAnswer {
            centre: centre.to_string(),
            stored: Vec::new(),
            inserted: Vec::new(),
            duplicates: Vec::new(),
            conflicts: Vec::new(),
        };
        for (row, outcome) in rows.iter().zip(outcomes) {
            let id = row.payment_id.clone();
            match outcome {
                PaymentOutcome::Inserted => {
                    answer.stored.push(id.clone());
                    answer.inserted.push(id);
                }
                PaymentOutcome::Duplicate => {
                    answer.stored.push(id.clone());
                    answer.duplicates.push(id);
                }
                PaymentOutcome::Conflict(stored) => answer.conflicts.push(Conflict {
                    message: describe_conflict(&stored, row),
                    id,
                }),
            }
        }
        Ok(answer)
    }

    /// Counts and sums per currency (blocking).
    pub fn reconcile(
        &self,
        centre: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CurrencyTotal>, StoreError> {
        self.db.reconcile_payments(centre, from_ms, to_ms)
    }
}

fn valid_long_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn trunc(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Names the fields in which a refused record differs from the stored one.
fn describe_conflict(stored: &PaymentRow, sent: &PaymentRow) -> String {
    let mut diffs = Vec::new();
    if stored.user_id != sent.user_id {
        diffs.push(format!("user {:?} ≠ {:?}", stored.user_id, sent.user_id));
    }
    if stored.amount_minor != sent.amount_minor {
        diffs.push(format!(
            "amount_minor {} ≠ {}",
            stored.amount_minor, sent.amount_minor
        ));
    }
    if stored.currency != sent.currency {
        diffs.push(format!("currency {} ≠ {}", stored.currency, sent.currency));
    }
    if stored.provider != sent.provider {
        diffs.push(format!("provider {} ≠ {}", stored.provider, sent.provider));
    }
    if stored.status != sent.status {
        diffs.push(format!("status {} ≠ {}", stored.status, sent.status));
    }
    if stored.created_ms != sent.created_ms {
        diffs.push(format!(
            "created_at {} ≠ {}",
            fmt_ms(stored.created_ms),
            fmt_ms(sent.created_ms)
        ));
    }
    format!(
        "payment {:?} of centre {:?} is already stored with different contents (stored vs sent: {}); the stored record is kept",
        sent.payment_id,
        sent.centre,
        diffs.join(", ")
    )
}

/// Unix ms as RFC 3339 (UTC).
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> PaymentRecord {
        PaymentRecord {
            id: id.into(),
            user: "u1".into(),
            amount_minor: 499,
            currency: "TWD".into(),
            provider: "apple".into(),
            status: "completed".into(),
            created_at: "2026-11-25T10:00:00+08:00".into(),
            centre: "pay-tw".into(),
        }
    }

    fn batch(records: Vec<PaymentRecord>) -> Batch {
        Batch {
            centre: "pay-tw".into(),
            records,
        }
    }

    #[test]
    fn a_good_batch_becomes_rows() {
        let rows = Ledger::validate(&batch(vec![record("p1"), record("p1")]), 7).unwrap();
        assert_eq!(
            rows.len(),
            1,
            "an identical repeat inside a batch is kept once"
        );
        // 2026-11-25T02:00:00Z.
        assert_eq!(rows[0].created_ms, 1_795_572_000_000);
        assert_eq!(rows[0].received_ms, 7);
    }

    #[test]
    fn every_bad_field_is_named() {
        type Edit = Box<dyn Fn(&mut PaymentRecord)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|r| r.id = "a b".into()), "records[0].id"),
            (Box::new(|r| r.id = String::new()), "records[0].id"),
            (
                Box::new(|r| r.centre = "pay-hk".into()),
                "records[0].centre",
            ),
            (Box::new(|r| r.user = "x\n".into()), "records[0].user"),
            (Box::new(|r| r.amount_minor = -1), "records[0].amount_minor"),
            (
                Box::new(|r| r.currency = "usd".into()),
                "records[0].currency",
            ),
            (
                Box::new(|r| r.provider = "Apple Pay".into()),
                "records[0].provider",
            ),
            (Box::new(|r| r.status = "".into()), "records[0].status"),
            (
                Box::new(|r| r.created_at = "yesterday".into()),
                "records[0].created_at",
            ),
            (
                Box::new(|r| r.created_at = "2026-11-25T10:00:00".into()),
                "records[0].created_at",
            ),
        ];
        for (edit, want) in cases {
            let mut r = record("p1");
            edit(&mut r);
            let e = Ledger::validate(&batch(vec![r]), 0).unwrap_err();
            assert!(e.message.starts_with(want), "{want}: {}", e.message);
            assert_eq!(e.code, Code::InvalidRecord);
        }
        let mut other = record("p1");
        other.amount_minor = 1;
        let e = Ledger::validate(&batch(vec![record("p1"), other]), 0).unwrap_err();
        assert!(e.message.contains("appears twice"), "{}", e.message);
        assert_eq!(
            Ledger::validate(&batch(vec![]), 0).unwrap_err().code,
            Code::EmptyBatch
        );
        let many = (0..=MAX_BATCH).map(|i| record(&format!("p{i}"))).collect();
        assert_eq!(
            Ledger::validate(&batch(many), 0).unwrap_err().code,
            Code::BatchTooLarge
        );
    }

    #[test]
    fn a_conflict_names_what_differs() {
        let a = Ledger::validate(&batch(vec![record("p1")]), 0)
            .unwrap()
            .remove(0);
        let mut b = a.clone();
        b.amount_minor = 500;
        b.currency = "USD".into();
        let m = describe_conflict(&a, &b);
        assert!(m.contains("amount_minor 499 ≠ 500"), "{m}");
        assert!(m.contains("currency TWD ≠ USD"), "{m}");
    }
}
