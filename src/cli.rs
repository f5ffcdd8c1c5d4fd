//! The command line: `serve`, `check`, `migrate`, `urls`. Parses arguments and calls in; the
//! logic lives in the library modules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::catalog::{self, Catalog};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Overrides};
use crate::policy::Policy;
use crate::providers::registry::ProviderFiles;
use crate::state::AppState;
use crate::steering::rounded_expiry;
use crate::store::Db;
use crate::vocab::Diagnostic;
use crate::vocab::Protocol;
use crate::vocab::ids::is_valid_stream_key;
use crate::vocab::{EnvSecrets, SecretMode};

#[derive(Debug, Parser)]
#[command(
    name = "livesteer",
    version,
    about = "Control plane for live streaming over several CDNs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(FileArgs),
    /// Validate provider and policy files; prints `file:line: message` per problem, exit 1 on any.
    Check {
        #[command(flatten)]
        files: FileArgs,
        /// Also resolve the secrets enabled providers name (the environment must hold them).
        #[arg(long)]
        secrets: bool,
    },
    /// Apply database migrations and exit.
    Migrate(FileArgs),
    /// Run the engine and simple strategies against a synthetic world in virtual time.
    Simulate {
        /// Scenario file (see `scenarios/`).
        #[arg(long)]
        scenario: PathBuf,
        /// Policy to simulate (default: policies/default.yaml).
        #[arg(long, default_value = "policies/default.yaml")]
        policy: PathBuf,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Simulate this many worlds (the scenario's seed, then the next ones) and pool them.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
        seeds: u64,
        /// Also print, per viewer region, each strategy's bad sessions and first choices.
        #[arg(long)]
        by_region: bool,
        /// Provider files whose `cost_per_gb` prices the world's providers (a scenario's
        /// `prices` override them).
        #[arg(long, default_value = "providers")]
        providers: PathBuf,
        /// Also write the report as one self-contained HTML page with charts.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Simulate only these strategies (comma-separated: engine, static, random,
        /// best_historical, oracle); each one's figures are the same as in a run of all.
        #[arg(long, value_delimiter = ',', value_parser = parse_strategy)]
        strategies: Vec<crate::sim::Strategy>,
    },
    /// Print, as JSON, the push URL and every play URL a provider would sign at an instant.
    Urls {
        #[command(flatten)]
        files: FileArgs,
        /// Provider id.
        #[arg(long)]
        provider: String,
        /// Stream key.
        #[arg(long)]
        stream: String,
        /// Region id (default: the policy's default region).
        #[arg(long)]
        region: Option<String>,
        /// Only this protocol (flv, hls, rtmp, dash).
        #[arg(long)]
        protocol: Option<String>,
        /// The instant, unix seconds (default: now).
        #[arg(long)]
        at: Option<i64>,
    },
}

/// Where the files and the database are.
#[derive(Debug, Args, Clone, Default)]
pub struct FileArgs {
    /// Configuration file (YAML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    pub listen: Option<String>,
    /// Database URL: sqlite://path or postgres://…
    #[arg(long)]
    pub database_url: Option<String>,
    /// Provider files directory.
    #[arg(long)]
    pub providers: Option<PathBuf>,
    /// Policy directory; the active policy is `default.yaml` in it.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// The active policy file (overrides --policies).
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

impl FileArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let policy_file = self
            .policy
            .clone()
            .or_else(|| self.policies.as_ref().map(|d| d.join("default.yaml")));
        Config::load(&Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
            providers_dir: self.providers.clone(),
            policy_file,
        })
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(a) => a.config().and_then(serve),
        Command::Check { files, secrets } => return check(&files, secrets),
        Command::Migrate(a) => a.config().and_then(|c| migrate(&c)),
        Command::Simulate {
            scenario,
            policy,
            json,
            seeds,
            by_region,
            providers,
            report,
            strategies,
        } => simulate(SimulateArgs {
            scenario: &scenario,
            policy: &policy,
            providers: &providers,
            json,
            seeds,
            by_region,
            report: report.as_deref(),
            strategies: &strategies,
        }),
        Command::Urls {
            files,
            provider,
            stream,
            region,
            protocol,
            at,
        } => files.config().and_then(|c| {
            urls(
                &c,
                &provider,
                &stream,
                region.as_deref(),
                protocol.as_deref(),
                at,
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("livesteer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let listen = config.listen;
        let (state, writer_task) =
            AppState::start(config, Arc::new(EnvSecrets), Arc::new(SystemClock)).await?;
        let server = crate::server::bind(state.clone(), listen)?;
        tracing::info!(addr = %server.addrs()[0], "livesteer listening");
        crate::server::spawn_housekeeping(state.clone());
        server.server.await.context("server failed")?;
        tracing::info!("shutting down: writing pending changes");
        state.shutdown(Duration::from_secs(30)).await;
        drop(state);
        let _ = tokio::time::timeout(Duration::from_secs(5), writer_task).await;
        Ok(())
    })
}

fn check(files: &FileArgs, secrets: bool) -> ExitCode {
    let config = match files.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livesteer: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mode = if secrets {
        SecretMode::Require
    } else {
        SecretMode::Skip
    };
    let dir = files
        .policies
        .clone()
        .unwrap_or_else(|| config.policies_dir().to_path_buf());
    let mut errors: Vec<Diagnostic> = Vec::new();
    let policies = match catalog::policy_files(&dir) {
        Ok(p) if p.is_empty() => {
            errors.push(Diagnostic::file(&dir, "no policy files (*.yaml) found"));
            p
        }
        Ok(p) => p,
        Err(d) => {
            errors.push(d);
            Vec::new()
        }
    };
    let mut checked = 0;
    for p in &policies {
        match Catalog::load(&config.providers_dir, p, &EnvSecrets, mode) {
            Ok(_) => checked += 1,
            Err(ds) => {
                for d in ds.0 {
                    if !errors.contains(&d) {
                        errors.push(d);
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        let providers = ProviderFiles::read_dir(&config.providers_dir)
            .map(|f| f.ids().len())
            .unwrap_or(0);
        println!("ok: {providers} provider file(s), {checked} policy file(s)");
        ExitCode::SUCCESS
    } else {
        for e in &errors {
            println!("{e}");
        }
        eprintln!("{} problem(s) found", errors.len());
        ExitCode::FAILURE
    }
}

/// What `simulate` is asked for.
struct SimulateArgs<'a> {
    scenario: &'a Path,
    policy: &'a Path,
    providers: &'a Path,
    json: bool,
    seeds: u64,
    by_region: bool,
    report: Option<&'a Path>,
    strategies: &'a [crate::sim::Strategy],
}

fn parse_strategy(name: &str) -> Result<crate::sim::Strategy, String> {
    crate::sim::Strategy::parse(name).ok_or_else(|| {
        let names: Vec<&str> = crate::sim::Strategy::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        format!("unknown strategy {name:?} (one of {})", names.join(", "))
    })
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let SimulateArgs {
        scenario,
        policy,
        providers,
        json,
        seeds,
        by_region,
        report: html,
        strategies,
    } = args;
    let (catalog, world) = crate::sim::catalog(policy, scenario, Some(providers))
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let name = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let mut shown = -1i64;
    let report = crate::sim::run(&catalog, &world, &name, seeds, strategies, |done| {
        // A progress line on stderr every tenth, for long runs.
        let tenth = (done * 10.0) as i64;
        if tenth > shown {
            shown = tenth;
            eprint!("\rsimulating {name}: {:>3.0}%", done * 100.0);
        }
    });
    eprintln!(
        "\rsimulated {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(file) = html {
        std::fs::write(file, crate::sim::report::html(&report, &world))
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
        if by_region {
            print!("\n{}", report.region_table());
        }
        let ratios: Vec<String> = report
            .ratios()
            .iter()
            .map(|(k, v)| format!("{v:.2}x {k}"))
            .collect();
        if !ratios.is_empty() {
            println!("\nengine bad-session rate: {}", ratios.join(", "));
        }
        let ranges: Vec<String> = report
            .ratio_ranges()
            .iter()
            .map(|(k, (lo, hi))| format!("{lo:.2}-{hi:.2}x {k}"))
            .collect();
        if !ranges.is_empty() {
            println!("over single worlds: {}", ranges.join(", "));
        }
    }
    Ok(())
}

fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database_url, 1).context("cannot open the database")?;
    let applied = db.run_migrations().context("cannot migrate the database")?;
    if applied.is_empty() {
        println!("database {} is up to date", db.backend());
    } else {
        for m in applied {
            println!("applied {m}");
        }
    }
    Ok(())
}

fn urls(
    config: &Config,
    provider: &str,
    stream: &str,
    region: Option<&str>,
    protocol: Option<&str>,
    at: Option<i64>,
) -> anyhow::Result<()> {
    if !is_valid_stream_key(stream) {
        anyhow::bail!(
            "--stream {stream:?} must be 1 to 128 characters of A-Z, a-z, 0-9, '_' or '-'"
        );
    }
    let protocols: Vec<Protocol> = match protocol {
        Some(p) => vec![
            p.parse()
                .map_err(|m: String| anyhow::anyhow!("--protocol: {m}"))?,
        ],
        None => Protocol::ALL.to_vec(),
    };
    let catalog = Catalog::load(
        &config.providers_dir,
        &config.policy_file,
        &EnvSecrets,
        SecretMode::Require,
    )
    .map_err(|d| anyhow::anyhow!("{d}"))?;
    let policy: &Policy = &catalog.policy;
    let region = match region {
        Some(r) => policy.region(r).ok_or_else(|| {
            anyhow::anyhow!(
                "--region {r:?} is not a region of {}",
                policy.source.display()
            )
        })?,
        None => policy.default_region(),
    };
    let p = catalog.registry.get(provider).ok_or_else(|| {
        let known: Vec<&str> = catalog.registry.iter().map(|p| p.id()).collect();
        anyhow::anyhow!(
            "--provider {provider:?} is not an enabled provider (enabled: {})",
            known.join(", ")
        )
    })?;
    let at = at.unwrap_or_else(|| SystemClock.now_secs());
    let push = if p.info().takes_ingest(&region.id) {
        let expires_at = rounded_expiry(at, policy.ingest.url_ttl_seconds);
        let url = p.push_url(stream, &region.id, expires_at)?;
        json!({ "url": url, "expires_at": expires_at })
    } else {
        serde_json::Value::Null
    };
    let play_expiry = rounded_expiry(at, policy.delivery.url_ttl_seconds);
    let mut play = Vec::new();
    for proto in protocols {
        if p.info().play_base(&region.id, proto).is_some() {
            let url = p.play_url(stream, &region.id, proto, play_expiry)?;
            play.push(json!({ "protocol": proto, "url": url, "expires_at": play_expiry }));
        }
    }
    let out = json!({
        "provider": p.id(),
        "kind": p.info().kind,
        "stream": stream,
        "region": region.id,
        "at": at,
        "push": push,
        "play": play,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Used by tests: the directory holding this crate's shipped files.
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
