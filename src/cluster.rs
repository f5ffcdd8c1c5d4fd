//! The replicas sharing one database, and how work is divided among them.
//!
//! Each replica renews a heartbeat row (`replicas`) every [`HEARTBEAT_EVERY`] from its
//! follower thread (`replicas`); a replica is live while its heartbeat is younger than
//! [`REPLICA_TTL_MS`]. Work that each replica could do for everything, but should do once (the
//! probes of live streams), is divided by rendezvous hashing: a key belongs to the live replica
//! with the highest [`weight`] of (replica id, key). Every replica computes the same owner from
//! the same live set, so each key has one owner; when a replica dies its keys spread over the
//! others within [`REPLICA_TTL_MS`] (plus a heartbeat), and only its keys move. A replica
//! stopped gracefully leaves the registry at once.
//!
//! On SQLite (one node) there is no registry: the one replica owns everything.
//!
//! **Architecture invariant:** [`Cluster::owns`] reads memory only; the registry is read and
//! written on the follower thread, never on a request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often a replica renews its heartbeat and reads the live set.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long a replica counts as live after its last heartbeat: the lease on its share.
pub const REPLICA_TTL_MS: i64 = 5_000;
/// Registry rows older than this are removed (under the `persist_scores` housekeeping lease).
pub const FORGET_DEAD_AFTER_MS: i64 = 3_600_000;

/// This replica and the live ones it knows of.
#[derive(Debug)]
pub struct Cluster {
    me: String,
    /// Live replica ids, sorted, this one included.
    live: RwLock<Arc<Vec<String>>>,
    /// Set once this replica has left the registry (a graceful stop): no more heartbeats.
    left: AtomicBool,
}

impl Cluster {
    /// A cluster of one (`me`) until the registry says otherwise.
    pub fn new(me: &str) -> Cluster {
        Cluster {
            me: me.to_string(),
            live: RwLock::new(Arc::new(vec![me.to_string()])),
            left: AtomicBool::new(false),
        }
    }

    /// Stops heartbeating (the registry row is removed by the caller).
    pub fn leave(&self) {
        self.left.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cluster::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.left.load(Ordering::SeqCst)
    }

    /// This replica's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The live replicas, sorted, this one always included.
    pub fn live(&self) -> Arc<Vec<String>> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the live set with what the registry answered (this replica is added if the
    /// answer lacks it: it is alive, whatever its last heartbeat says).
    pub fn set_live(&self, mut ids: Vec<String>) {
        if !ids.contains(&self.me) {
            ids.push(self.me.clone());
        }
        ids.sort();
        ids.dedup();
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if **live != ids {
            tracing::info!(replicas = ?ids, "live replicas changed");
            *live = Arc::new(ids);
        }
    }

    /// Whether `key` belongs to this replica among the live ones.
    pub fn owns(&self, key: &str) -> bool {
        owner(&self.live(), key) == Some(self.me.as_str())
    }
}

/// The replica among `replicas` that `key` belongs to: the highest [`weight`].
pub fn owner<'a>(replicas: &'a [String], key: &str) -> Option<&'a str> {
    replicas
        .iter()
        .max_by_key(|r| (weight(r, key), r.as_str()))
        .map(String::as_str)
}

/// The rendezvous weight of (`replica`, `key`): FNV-1a over both, then a 64-bit finaliser
/// (splitmix64) so that similar ids spread. Stable across processes and builds.
pub fn weight(replica: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in replica.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("host-{i}-abcdef")).collect()
    }

    #[test]
    fn keys_spread_evenly_and_only_a_dead_replicas_keys_move() {
        let three = ids(3);
        let keys: Vec<String> = (0..3_000).map(|i| format!("s{i:026}")).collect();
        let mut counts = [0usize; 3];
        for k in &keys {
            let o = owner(&three, k).unwrap();
            counts[three.iter().position(|r| r == o).unwrap()] += 1;
        }
        for c in counts {
            assert!((850..=1150).contains(&c), "uneven split {counts:?}");
        }
        let two = vec![three[0].clone(), three[2].clone()];
        for k in &keys {
            let before = owner(&three, k).unwrap();
            let after = owner(&two, k).unwrap();
            if before != three[1] {
                assert_eq!(before, after, "{k} moved although its owner lives");
            }
        }
    }

    #[test]
    fn a_cluster_always_counts_itself() {
        let c = Cluster::new("me");
        assert!(c.owns("anything"));
        c.set_live(vec!["other".into()]);
        assert_eq!(*c.live(), vec!["me".to_string(), "other".to_string()]);
        let mine = (0..200).filter(|i| c.owns(&format!("k{i}"))).count();
        assert!((60..=140).contains(&mine), "{mine} of 200");
    }
}
