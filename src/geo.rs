//! Client → region. The first source that answers wins:
//! 1. an explicit `region` in the request (must be a known region id);
//! 2. the country in a trusted edge header (`CloudFront-Viewer-Country`, `CF-IPCountry`);
//! 3. the policy's CIDR table (longest prefix);
//! 4. an optional MaxMind country database (`.mmdb`);
//! 5. the policy's default region.
//!
//! **Architecture invariant:** no network calls; the `.mmdb` file is read once when the policy
//! is loaded.

use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;

use crate::policy::{Policy, Region};

/// Which source placed the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionSource {
    Explicit,
    Header,
    Cidr,
    Mmdb,
    Default,
}

impl RegionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RegionSource::Explicit => "explicit",
            RegionSource::Header => "header",
            RegionSource::Cidr => "cidr",
            RegionSource::Mmdb => "mmdb",
            RegionSource::Default => "default",
        }
    }
}

/// What a request tells about where the client is.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientHints<'a> {
    /// `region` from the query or body.
    pub region: Option<&'a str>,
    /// Value of the trusted country header, when the policy names one and it is present.
    pub header_country: Option<&'a str>,
    /// The client's address.
    pub ip: Option<IpAddr>,
}

/// The explicit region named no region of the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?}")]
pub struct UnknownRegion(pub String);

/// An opened MaxMind country database.
pub struct CountryDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for CountryDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountryDb")
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

impl CountryDb {
    /// Opens a `.mmdb` file.
    pub fn open(path: &Path) -> Result<CountryDb, String> {
        maxminddb::Reader::open_readfile(path)
            .map(|reader| CountryDb { reader })
            .map_err(|e| format!("cannot open MaxMind database {}: {e}", path.display()))
    }

    /// The ISO country code for an address, if the database has one.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let result = self.reader.lookup(ip).ok()?;
        let record: maxminddb::geoip2::Country = result.decode().ok()??;
        record
            .country
            .iso_code
            .or(record.registered_country.iso_code)
            .map(str::to_string)
    }
}

/// Places a client in a region.
pub fn resolve<'p>(
    policy: &'p Policy,
    mmdb: Option<&CountryDb>,
    hints: ClientHints<'_>,
) -> Result<(&'p Region, RegionSource), UnknownRegion> {
    if let Some(r) = hints.region.map(str::trim).filter(|r| !r.is_empty()) {
        return policy
            .region(r)
            .map(|region| (region, RegionSource::Explicit))
            .ok_or_else(|| UnknownRegion(r.chars().take(64).collect()));
    }
    if let Some(region) = hints
        .header_country
        .and_then(|c| policy.region_for_country(c.trim()))
    {
        return Ok((region, RegionSource::Header));
    }
    if let Some(ip) = hints.ip {
        if let Some(region) = policy.region_for_ip(ip) {
            return Ok((region, RegionSource::Cidr));
        }
        if let Some(region) = mmdb
            .and_then(|db| db.country(ip))
            .and_then(|c| policy.region_for_country(&c))
        {
            return Ok((region, RegionSource::Mmdb));
        }
    }
    Ok((policy.default_region(), RegionSource::Default))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    const POLICY: &str = r#"
regions:
  - id: tw
    countries: [TW]
    cidrs: [203.69.0.0/16, 203.69.66.0/24]
  - id: hk
    countries: [HK]
    cidrs: [203.69.66.0/25]
  - id: eu
    countries: [GB, SE]
  - id: cn
    countries: [CN]
  - id: global
default_region: global
"#;

    fn policy() -> Policy {
        Policy::parse(Path::new("test.yaml"), POLICY, &BTreeSet::new()).unwrap()
    }

    fn region(
        p: &Policy,
        hints: ClientHints<'_>,
        db: Option<&CountryDb>,
    ) -> (String, RegionSource) {
        let (r, s) = resolve(p, db, hints).unwrap();
        (r.id.clone(), s)
    }

    #[test]
    fn order_of_sources() {
        let p = policy();
        let ip: IpAddr = "203.69.1.1".parse().unwrap();
        let all = ClientHints {
            region: Some("eu"),
            header_country: Some("HK"),
            ip: Some(ip),
        };
        assert_eq!(region(&p, all, None), ("eu".into(), RegionSource::Explicit));
        let no_explicit = ClientHints {
            region: None,
            ..all
        };
        assert_eq!(
            region(&p, no_explicit, None),
            ("hk".into(), RegionSource::Header)
        );
        let ip_only = ClientHints {
            ip: Some(ip),
            ..Default::default()
        };
        assert_eq!(region(&p, ip_only, None), ("tw".into(), RegionSource::Cidr));
        assert_eq!(
            region(&p, ClientHints::default(), None),
            ("global".into(), RegionSource::Default)
        );
    }

    #[test]
    fn longest_prefix_wins_and_v4_mapped_v6_matches() {
        let p = policy();
        for (ip, want) in [
            ("203.69.66.1", "hk"),
            ("203.69.66.200", "tw"),
            ("::ffff:203.69.66.1", "hk"),
        ] {
            let hints = ClientHints {
                ip: Some(ip.parse().unwrap()),
                ..Default::default()
            };
            assert_eq!(region(&p, hints, None).0, want, "{ip}");
        }
    }

    #[test]
    fn unknown_header_country_falls_through() {
        let p = policy();
        let hints = ClientHints {
            header_country: Some("XX"),
            ..Default::default()
        };
        assert_eq!(region(&p, hints, None).1, RegionSource::Default);
        let hints = ClientHints {
            header_country: Some("garbage-header"),
            ..Default::default()
        };
        assert_eq!(region(&p, hints, None).1, RegionSource::Default);
    }

    #[test]
    fn explicit_unknown_region_is_an_error() {
        let p = policy();
        let hints = ClientHints {
            region: Some("mars"),
            ..Default::default()
        };
        assert_eq!(
            resolve(&p, None, hints).unwrap_err(),
            UnknownRegion("mars".into())
        );
    }

    fn maxmind_country_db() -> Option<CountryDb> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/testdata/maxmind/GeoIP2-Country-Test.mmdb");
        if !path.is_file() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "MaxMind test database missing at {}",
                path.display()
            );
            println!(
                "skipping: MaxMind test database not found at {}",
                path.display()
            );
            return None;
        }
        Some(CountryDb::open(&path).unwrap())
    }

    /// Addresses and countries from the table in `shared/testdata/maxmind/README.md`, taken from
    /// MaxMind's own test data.
    #[test]
    fn maxmind_test_database() {
        let Some(db) = maxmind_country_db() else {
            return;
        };
        for (ip, cc) in [
            ("2.125.160.216", "GB"),
            ("81.2.69.142", "GB"),
            ("216.160.83.56", "US"),
            ("89.160.20.112", "SE"),
            ("175.16.199.1", "CN"),
        ] {
            assert_eq!(db.country(ip.parse().unwrap()).as_deref(), Some(cc), "{ip}");
        }
        assert_eq!(db.country("10.0.0.1".parse().unwrap()), None);
        let p = policy();
        let hints = ClientHints {
            ip: Some("89.160.20.112".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            region(&p, hints, Some(&db)),
            ("eu".into(), RegionSource::Mmdb)
        );
        let hints = ClientHints {
            ip: Some("216.160.83.56".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            region(&p, hints, Some(&db)),
            ("global".into(), RegionSource::Default)
        );
    }

    #[test]
    fn opening_a_bad_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        assert!(CountryDb::open(&path).unwrap_err().contains("bad.mmdb"));
    }
}
