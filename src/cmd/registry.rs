//! `hoist pull`, `push`, `login`, `logout`, `catalog`, `tags`.

use std::io::{BufRead, Write};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use oci::Reference;
use registry_client::Client;
use registry_client::auth::{Credentials, normalize_registry};
use registry_client::platform::Platform;
use store::Store;

use crate::cli::{
    CatalogArgs, CompressionArg, LoginArgs, LogoutArgs, PullArgs, PushArgs, TagsArgs,
};
use crate::transfer::progress::{Mode, Progress};
use crate::transfer::{RegistrySettings, pull, push, runtime};

fn client(insecure: &[String]) -> Result<Arc<Client>> {
    Ok(RegistrySettings::load(insecure)?.client())
}

/// Parses an image name for pull or push (docker's rules: `busybox` is
/// `docker.io/library/busybox:latest`).
pub(crate) fn parse_ref(s: &str) -> Result<Reference> {
    Reference::parse_docker(s).with_context(|| format!("invalid reference format: `{s}`"))
}

pub fn pull_cmd(store: &Store, insecure: &[String], a: PullArgs) -> Result<()> {
    let reference = parse_ref(&a.image)?;
    let platform = a
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--platform: {e}"))?;
    let rt = runtime()?;
    let opts = pull::PullOptions {
        platform,
        all_platforms: a.all_platforms,
        progress: Progress::new(Mode::from_flags(a.progress.as_deref(), a.quiet)),
    };
    let pulled = pull::pull(store, &client(insecure)?, &rt, &reference, &opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}@{}", pulled.name, pulled.digest)?;
    Ok(())
}

pub fn push_cmd(store: &Store, insecure: &[String], a: PushArgs) -> Result<()> {
    let image = store.resolve(&a.image)?;
    let target = match &a.destination {
        Some(d) => parse_ref(d)?,
        None => parse_ref(&a.image)?,
    };
    let rt = runtime()?;
    let opts = push::PushOptions {
        compression: match a.compression {
            CompressionArg::Gzip => push::Compression::Gzip,
            CompressionArg::Zstd => push::Compression::Zstd,
        },
        level: a.compression_level,
        progress: Progress::new(Mode::from_flags(a.progress.as_deref(), a.quiet)),
    };
    let pushed = push::push(store, &client(insecure)?, &rt, &image, &target, &opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}@{}", target.name(), pushed.digest)?;
    if !a.quiet {
        eprintln!(
            "{}: digest: {} size: {}",
            target.tag().unwrap_or("latest"),
            pushed.digest,
            pushed.size
        );
    }
    Ok(())
}

fn registry_arg(r: Option<&str>) -> String {
    normalize_registry(r.unwrap_or("docker.io"))
}

pub fn login_cmd(insecure: &[String], a: LoginArgs) -> Result<()> {
    let registry = registry_arg(a.registry.as_deref());
    if registry.is_empty() {
        bail!("invalid registry name");
    }
    let username = match a.username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_string()
        }
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        bail!("no password: use --password-stdin");
    };
    if username.is_empty() || password.is_empty() {
        bail!("user name and password must not be empty");
    }
    let rt = runtime()?;
    let c = client(insecure)?;
    rt.block_on(c.check_login(&registry, Credentials::basic(&username, &password)))?;
    let path = match a.authfile {
        Some(p) => p,
        None => registry_client::auth::login_file_from_env()
            .context("no place for the auth file: set REGISTRY_AUTH_FILE or HOME")?,
    };
    registry_client::auth::store_login(&path, &registry, &username, &password)?;
    eprintln!("Login Succeeded");
    Ok(())
}

pub fn logout_cmd(a: LogoutArgs) -> Result<()> {
    let registry = registry_arg(a.registry.as_deref());
    let path = match a.authfile {
        Some(p) => p,
        None => registry_client::auth::login_file_from_env()
            .context("no auth file: set REGISTRY_AUTH_FILE or HOME")?,
    };
    if registry_client::auth::remove_login(&path, &registry)? {
        eprintln!("Removed login credentials for {registry}");
    } else {
        bail!("not logged in to {registry}");
    }
    Ok(())
}

pub fn catalog_cmd(insecure: &[String], a: CatalogArgs) -> Result<()> {
    let rt = runtime()?;
    let c = client(insecure)?;
    let repos = rt.block_on(registry_client::repo::catalog(
        &c,
        &registry_arg(Some(&a.registry)),
    ))?;
    let mut out = std::io::stdout().lock();
    for r in repos {
        writeln!(out, "{r}")?;
    }
    Ok(())
}

pub fn tags_cmd(insecure: &[String], a: TagsArgs) -> Result<()> {
    let r = Reference::parse_docker(&a.repository)
        .with_context(|| format!("invalid repository name `{}`", a.repository))?;
    let rt = runtime()?;
    let c = client(insecure)?;
    let tags = rt.block_on(async {
        let repo = registry_client::Repository::open(&c, r.domain(), r.path(), false, &[]).await?;
        repo.tags().await
    })?;
    let mut out = std::io::stdout().lock();
    for t in tags {
        writeln!(out, "{t}")?;
    }
    Ok(())
}
