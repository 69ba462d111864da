//! One module per subcommand; each resolves its arguments and calls the library.

mod build;
mod changes;
mod containers;
mod export;
mod history;
mod images;
mod import;
mod inspect;
mod load;
mod prune;
pub(crate) mod registry;
mod rmi;
mod run;
mod save;
mod tag;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use store::Store;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let root = cli.root.clone().unwrap_or_else(Store::default_root);
    match cli.command {
        Command::Run(a) => return Ok(run::run(&root, &cli.insecure_registry, *a)),
        Command::Start(a) => return Ok(containers::start(&root, a)),
        _ => {}
    }
    match cli.command {
        Command::Run(_) | Command::Start(_) => unreachable!("handled above"),
        Command::Ps(a) => containers::ps(&open(&root)?, a),
        Command::Rm(a) => containers::rm(&open(&root)?, a),
        Command::Commit(a) => containers::commit(&open(&root)?, a),
        Command::Images(a) => images::run(&open(&root)?, a),
        Command::Inspect(a) => inspect::run(&open(&root)?, a),
        Command::History(a) => history::run(&open(&root)?, a),
        Command::Tag(a) => tag::run(&open(&root)?, a),
        Command::Rmi(a) => rmi::run(&open(&root)?, a),
        Command::Import(a) => import::run(&open(&root)?, a),
        Command::Export(a) => export::run(&open(&root)?, a),
        Command::Save(a) => save::run(&open(&root)?, a),
        Command::Load(a) => load::run(&open(&root)?, a),
        Command::Prune(a) => prune::run(&open(&root)?, a),
        Command::Build(a) => build::run(&root, &cli.insecure_registry, a),
        Command::Pull(a) => registry::pull_cmd(&open(&root)?, &cli.insecure_registry, a),
        Command::Push(a) => registry::push_cmd(&open(&root)?, &cli.insecure_registry, a),
        Command::Login(a) => registry::login_cmd(&cli.insecure_registry, a),
        Command::Logout(a) => registry::logout_cmd(a),
        Command::Catalog(a) => registry::catalog_cmd(&cli.insecure_registry, a),
        Command::Tags(a) => registry::tags_cmd(&cli.insecure_registry, a),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Without root, the user namespace `hoist run` uses (the caller as root, its subordinate
/// ranges as 1..), for the sandbox and, read backwards, for writing layers from the files of a
/// rootless store. `None` as root.
pub(crate) fn rootless_maps() -> Option<runtime_lite::userns::IdMaps> {
    store::apply::rootless().then(runtime_lite::userns::IdMaps::rootless)
}

/// Removes a container's directory; without root, what the container's other users made there
/// is removed from inside its user namespace.
pub(crate) fn remove_container_dir(dir: &Path) -> Result<()> {
    match store::fsutil::remove_all(dir) {
        Err(e) if store::apply::rootless() && dir.exists() => {
            runtime_lite::userns::remove_inside(Path::new("/proc/self/exe"), dir)
                .with_context(|| format!("{e}; also from inside the user namespace"))
        }
        r => Ok(r?),
    }
}

/// [`rootless_maps`] as the store's id mapping for writing layers.
pub(crate) fn rootless_ids() -> Option<store::tarwrite::IdMapping> {
    let range = |m: &runtime_lite::userns::IdMap| store::tarwrite::IdRange {
        container: m.container,
        host: m.host,
        size: m.size,
    };
    rootless_maps().map(|maps| store::tarwrite::IdMapping {
        uids: maps.uids.iter().map(range).collect(),
        gids: maps.gids.iter().map(range).collect(),
    })
}

fn open(root: &Path) -> Result<Store> {
    Store::open(root).with_context(|| format!("cannot open the store at `{}`", root.display()))
}

/// Where to write a tarball: a file written atomically (temp + rename), or stdout when it is
/// not a terminal.
pub(crate) enum Output {
    File {
        tmp: std::path::PathBuf,
        path: std::path::PathBuf,
        file: std::io::BufWriter<std::fs::File>,
    },
    Stdout(std::io::BufWriter<std::io::Stdout>),
    /// A device or FIFO, written in place.
    Direct(std::io::BufWriter<std::fs::File>),
}

impl Output {
    pub(crate) fn new(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) if p != Path::new("-") => {
                // Follow a symlink to the file it names; write into anything that is not a
                // regular file (/dev/null, a FIFO, a terminal) directly: renaming over it would
                // replace the device.
                let target = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                if std::fs::metadata(&target).is_ok_and(|m| !m.is_file()) {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&target)
                        .with_context(|| format!("cannot open `{}`", p.display()))?;
                    return Ok(Self::Direct(std::io::BufWriter::with_capacity(
                        1 << 20,
                        file,
                    )));
                }
                let dir = target
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let name = target
                    .file_name()
                    .with_context(|| format!("`{}` is not a file name", p.display()))?;
                let tmp = dir.join(format!(
                    ".{}.hoist-tmp-{}",
                    name.to_string_lossy(),
                    std::process::id()
                ));
                let file = std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create `{}`", tmp.display()))?;
                Ok(Self::File {
                    tmp,
                    path: target,
                    file: std::io::BufWriter::with_capacity(1 << 20, file),
                })
            }
            _ => {
                if std::io::stdout().is_terminal() {
                    bail!(
                        "refusing to write a tarball to a terminal: use -o FILE or redirect stdout"
                    );
                }
                Ok(Self::Stdout(std::io::BufWriter::with_capacity(
                    1 << 20,
                    std::io::stdout(),
                )))
            }
        }
    }

    /// Makes the output visible (renames the temp file into place).
    pub(crate) fn finish(self) -> Result<()> {
        match self {
            Self::File { tmp, path, file } => {
                let f = file
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("cannot write `{}`", tmp.display()))?;
                f.sync_all()
                    .with_context(|| format!("cannot write `{}`", tmp.display()))?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("cannot rename to `{}`", path.display()))?;
                Ok(())
            }
            Self::Stdout(mut s) => {
                std::io::Write::flush(&mut s).context("cannot write to stdout")?;
                Ok(())
            }
            Self::Direct(mut f) => {
                std::io::Write::flush(&mut f).context("cannot write the output")?;
                Ok(())
            }
        }
    }

    /// Removes a partial output.
    pub(crate) fn abort(self) {
        if let Self::File { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File { file, .. } => file.write(buf),
            Self::Stdout(s) => s.write(buf),
            Self::Direct(f) => f.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Self::File { file, .. } => file.write_all(buf),
            Self::Stdout(s) => s.write_all(buf),
            Self::Direct(f) => f.write_all(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File { file, .. } => file.flush(),
            Self::Stdout(s) => s.flush(),
            Self::Direct(f) => f.flush(),
        }
    }
}

/// Writes to stdout, treating a closed pipe as success.
pub(crate) fn stdout_lines(lines: impl IntoIterator<Item = String>) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in lines {
        if let Err(e) = writeln!(out, "{l}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e).context("cannot write to stdout");
        }
    }
    Ok(())
}
