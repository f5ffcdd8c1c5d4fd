//! Rows as plain structs, the same for both backends.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{anchors, policy_versions, streams};

/// A row of `anchors`.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = anchors)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct AnchorRow {
    /// Anchor id.
    pub id: String,
    /// Region the anchor was last seen in, when known.
    pub region: Option<String>,
    /// First seen, unix milliseconds.
    pub created_ms: i64,
    /// Last upsert, unix milliseconds.
    pub updated_ms: i64,
}

/// A row of `streams`: one stream key and where it is pushed.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = streams)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct StreamRow {
    /// The stream key.
    pub id: String,
    /// The anchor pushing it; `save_streams` creates the anchor row when missing.
    pub anchor_id: String,
    /// Region the stream is pushed from.
    pub region: String,
    /// JSON array of the provider ids pushed to, primary first (see [`StreamRow::provider_ids`]).
    pub providers: String,
    /// `live`, `ended`, …
    pub state: String,
    /// Why the providers were chosen, or why the stream ended.
    pub reason: String,
    /// Unix milliseconds.
    pub started_ms: i64,
    /// Unix milliseconds, once ended.
    pub ended_ms: Option<i64>,
    /// Unix milliseconds of the last change; a save older than the stored row is ignored.
    pub updated_ms: i64,
}

impl StreamRow {
    /// The provider ids pushed to, primary first. An unreadable `providers` column gives an empty list.
    pub fn provider_ids(&self) -> Vec<String> {
        decode_list(&self.providers)
    }

    /// The primary provider, if any.
    pub fn primary_provider(&self) -> Option<String> {
        self.provider_ids().into_iter().next()
    }

    /// Encodes provider ids for the `providers` column.
    pub fn encode_providers<S: AsRef<str>>(ids: &[S]) -> String {
        encode_list(ids)
    }
}

/// A row of `policy_versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, Selectable)]
#[diesel(table_name = policy_versions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct PolicyVersionRow {
    /// Sequence number, increasing with each new version recorded.
    pub id: i32,
    /// Content hash of the policy files.
    pub version: String,
    /// JSON array of the file names (see [`PolicyVersionRow::file_names`]).
    pub files: String,
    /// Unix milliseconds.
    pub loaded_ms: i64,
}

impl PolicyVersionRow {
    /// The policy file names. An unreadable `files` column gives an empty list.
    pub fn file_names(&self) -> Vec<String> {
        decode_list(&self.files)
    }
}

/// A new `policy_versions` row (the id is assigned by the database).
#[derive(Insertable)]
#[diesel(table_name = policy_versions)]
pub(crate) struct NewPolicyVersion<'a> {
    pub version: &'a str,
    pub files: &'a str,
    pub loaded_ms: i64,
}

fn encode_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    // Serializing a list of strings cannot fail.
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_string())
}

fn decode_list(json: &str) -> Vec<String> {
    match serde_json::from_str(json) {
        Ok(items) => items,
        Err(error) => {
            tracing::warn!(%error, value = json, "unreadable JSON list in a store row");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(providers: &str) -> StreamRow {
        StreamRow {
            id: "s".into(),
            anchor_id: "a".into(),
            region: "eu".into(),
            providers: providers.into(),
            state: "live".into(),
            reason: String::new(),
            started_ms: 1,
            ended_ms: None,
            updated_ms: 1,
        }
    }

    #[test]
    fn providers_round_trip_primary_first() {
        let json = StreamRow::encode_providers(&["aliyun", "tencent", "edge \"x\""]);
        assert_eq!(json, r#"["aliyun","tencent","edge \"x\""]"#);
        let r = row(&json);
        assert_eq!(r.provider_ids(), vec!["aliyun", "tencent", "edge \"x\""]);
        assert_eq!(r.primary_provider().as_deref(), Some("aliyun"));
        assert_eq!(StreamRow::encode_providers::<&str>(&[]), "[]");
    }

    #[test]
    fn unreadable_providers_give_an_empty_list() {
        assert!(row("not json").provider_ids().is_empty());
        assert!(row("").primary_provider().is_none());
    }
}
