//! A single-flight cache of origin manifests, per stream, refreshed off the request path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Manifest, OriginError, OriginErrorKind, OriginTarget};
use crate::metrics as m;

/// Largest manifest body read from an origin.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;

/// Streams whose manifests are kept at most.
const CAPACITY: u64 = 100_000;

/// A manifest nobody asked for in this long is dropped (its stream has no viewers left).
const IDLE: Duration = Duration::from_secs(600);

/// How the cache fetches, from the policy in force at each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A manifest older than this is refreshed (in the background; it is answered meanwhile),
    /// unless it says itself how long it holds ([`Manifest::hold`]: an MPD's
    /// `minimumUpdatePeriod`).
    pub refresh: Duration,
    /// One fetch gives up after this long.
    pub timeout: Duration,
    /// A failure is answered for this long before the origin is asked again.
    pub retry: Duration,
}

impl Limits {
    pub fn from_policy(d: &crate::policy::DeliverySettings) -> Limits {
        Limits {
            refresh: Duration::from_secs(d.origin_refresh_seconds),
            timeout: Duration::from_millis(d.origin_timeout_ms),
            retry: Duration::from_secs(d.origin_retry_seconds),
        }
    }
}

/// One stream's fetch: the manifest or why there is none, and when.
struct Entry<T> {
    result: Result<Arc<T>, OriginError>,
    /// When a refresh is due: the refresh interval after a success, the retry time after a
    /// refresh that failed.
    due: Mutex<Instant>,
    /// A background refresh is running.
    refreshing: AtomicBool,
    /// How long a failure is kept (`None` for a success, which is kept until replaced).
    keep: Option<Duration>,
    /// When it was fetched.
    fetched: Instant,
    /// Why the last background refresh of a success failed, if it did.
    failed: Mutex<Option<OriginError>>,
}

/// Failures leave the cache after their retry time; successes stay until replaced or idle.
struct Expiry;

impl<K, T> moka::Expiry<K, Arc<Entry<T>>> for Expiry {
    fn expire_after_create(&self, _: &K, e: &Arc<Entry<T>>, _: Instant) -> Option<Duration> {
        e.keep
    }

    fn expire_after_update(
        &self,
        _: &K,
        e: &Arc<Entry<T>>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        e.keep
    }
}

/// Origin manifests of type `T` by stream, fetched at most once per stream per refresh
/// interval, whatever the number of viewers:
///
/// - a miss (a cold stream, or a failure older than the retry time) is one fetch that every
///   concurrent request for that stream waits on, bounded by the timeout;
/// - a manifest older than the refresh interval is answered at once while one background fetch
///   replaces it; a failed refresh keeps the last good manifest and tries again after the retry
///   time, unless the manifest is too old to be answered ([`Manifest::stale_after`]: a live
///   MPD), when the refresh's failure is answered until one succeeds;
/// - a failure is answered from the cache for the retry time, so an origin that is down is
///   asked once per stream in that time, not once per viewer;
/// - entries are per stream: a slow origin holds up only its own streams' first viewers.
pub struct OriginCache<T> {
    entries: moka::future::Cache<Arc<str>, Arc<Entry<T>>>,
    client: reqwest::Client,
}

impl<T> Clone for OriginCache<T> {
    fn clone(&self) -> Self {
        Self {
            entries: self.entries.clone(),
            client: self.client.clone(),
        }
    }
}

impl<T: Manifest> OriginCache<T> {
    pub fn new(client: reqwest::Client) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(IDLE)
                .expire_after(Expiry)
                .build(),
            client,
        }
    }

    /// The manifest at `target`, from memory unless this is a miss (see the type's doc).
    pub async fn get(&self, target: &OriginTarget, limits: Limits) -> Result<Arc<T>, OriginError> {
        let key: Arc<str> = Arc::from(target.key());
        if let Some(e) = self.entries.get(&key).await {
            if let Ok(m) = &e.result {
                self.refresh_if_due(&key, &e, target, limits);
                // Too old to be an answer while its refreshes fail: the refresh's failure is.
                if m.stale_after()
                    .is_some_and(|limit| e.fetched.elapsed() > limit)
                    && let Some(err) = e.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
                {
                    return Err(err);
                }
            }
            return e.result.clone();
        }
        let (client, target_owned, cache) = (self.client.clone(), target.clone(), self.clone());
        let key_init = key.clone();
        let entry = self
            .entries
            .get_with(key, async move {
                // The fetch runs on its own task, so that a viewer who hangs up does not cancel
                // it for the others; it stores what it got even then.
                let fetch = tokio::spawn(async move {
                    let e = Arc::new(entry(
                        fetch::<T>(&client, &target_owned, limits).await,
                        limits,
                    ));
                    cache.entries.insert(key_init, e.clone()).await;
                    e
                });
                match fetch.await {
                    Ok(e) => e,
                    Err(join) => Arc::new(entry(
                        Err(OriginError::new(
                            target,
                            OriginErrorKind::Unreachable(format!("fetch task failed: {join}")),
                        )),
                        limits,
                    )),
                }
            })
            .await;
        entry.result.clone()
    }

    /// Starts one background refresh of an entry that is due.
    fn refresh_if_due(
        &self,
        key: &Arc<str>,
        e: &Arc<Entry<T>>,
        target: &OriginTarget,
        limits: Limits,
    ) {
        let now = Instant::now();
        if *e.due.lock().unwrap_or_else(|p| p.into_inner()) > now
            || e.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (cache, key, target, old) = (self.clone(), key.clone(), target.clone(), e.clone());
        tokio::spawn(async move {
            match fetch::<T>(&cache.client, &target, limits).await {
                Ok(v) => {
                    cache
                        .entries
                        .insert(key, Arc::new(entry(Ok(v), limits)))
                        .await
                }
                Err(err) => {
                    tracing::warn!(error = %err, "origin refresh failed; the last good manifest stays");
                    *old.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                    *old.due.lock().unwrap_or_else(|p| p.into_inner()) =
                        Instant::now() + limits.retry;
                    old.refreshing.store(false, Ordering::Release);
                }
            }
        });
    }

    /// Forgets every manifest (after a reload: endpoints may have changed).
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

fn entry<T: Manifest>(result: Result<Arc<T>, OriginError>, limits: Limits) -> Entry<T> {
    let (due, keep) = match &result {
        Ok(m) => (m.hold().unwrap_or(limits.refresh), None),
        Err(_) => (limits.retry, Some(limits.retry)),
    };
    Entry {
        result,
        due: Mutex::new(Instant::now() + due),
        refreshing: AtomicBool::new(false),
        keep,
        fetched: Instant::now(),
        failed: Mutex::new(None),
    }
}

/// One fetch of `target`: a 2xx whose body, at most [`MAX_MANIFEST_BYTES`], parses as a `T`,
/// all within the timeout. Counted by provider and outcome.
async fn fetch<T: Manifest>(
    client: &reqwest::Client,
    target: &OriginTarget,
    limits: Limits,
) -> Result<Arc<T>, OriginError> {
    let result = match tokio::time::timeout(limits.timeout, read(client, target, limits)).await {
        Ok(r) => r,
        Err(_) => Err(OriginErrorKind::Timeout(limits.timeout)),
    }
    .and_then(|(body, url)| {
        T::parse(&body, &url).map_err(|why| OriginErrorKind::NotManifest(T::FORMAT, why))
    });
    metrics::counter!(m::ORIGIN_FETCHES.name, "provider" => target.provider.clone(),
        "outcome" => result.as_ref().map_or_else(OriginErrorKind::outcome, |_| "ok"))
    .increment(1);
    result.map(Arc::new).map_err(|kind| {
        let err = OriginError::new(target, kind);
        tracing::warn!(error = %err, "origin manifest fetch failed");
        err
    })
}

async fn read(
    client: &reqwest::Client,
    target: &OriginTarget,
    limits: Limits,
) -> Result<(Vec<u8>, url::Url), OriginErrorKind> {
    let mut res = client
        .get(target.url.as_str())
        .timeout(limits.timeout)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                OriginErrorKind::Timeout(limits.timeout)
            } else {
                OriginErrorKind::Unreachable(error_chain(e))
            }
        })?;
    let status = res.status();
    if !status.is_success() {
        return Err(OriginErrorKind::Status(status.as_u16()));
    }
    if res
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
    {
        return Err(OriginErrorKind::TooLarge(MAX_MANIFEST_BYTES));
    }
    let url = res.url().clone();
    let mut body = Vec::new();
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                    return Err(OriginErrorKind::TooLarge(MAX_MANIFEST_BYTES));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok((body, url)),
            Err(e) if e.is_timeout() => return Err(OriginErrorKind::Timeout(limits.timeout)),
            Err(e) => return Err(OriginErrorKind::Unreachable(error_chain(e))),
        }
    }
}

/// An error and its sources, as one line (reqwest's own message hides the cause), without the
/// URL: its query is a signature, which stays out of answers and logs.
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
