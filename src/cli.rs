//! Raw command-line arguments (clap). Resolution into library calls lives in `cmd/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// hoist: a daemonless container image tool.
#[derive(Parser, Debug)]
#[command(name = "hoist", version, about, propagate_version = true)]
pub struct Cli {
    /// Store root directory [default: /var/lib/hoist as root, else $XDG_DATA_HOME/hoist]
    #[arg(long, global = true, env = "HOIST_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// A registry that may be reached over plain HTTP or with an unverified certificate
    /// (repeatable; loopback registries fall back to HTTP anyway)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// More logging on stderr (-v info, -vv debug, -vvv trace); before the subcommand
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List images
    Images(ImagesArgs),
    /// Show details of images as JSON
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Give an image another name
    Tag(TagArgs),
    /// Remove names and images
    Rmi(RmiArgs),
    /// Make a one-layer image from a root filesystem tarball
    Import(ImportArgs),
    /// Write an image's flattened root filesystem as a tarball
    Export(ExportArgs),
    /// Write images to an archive (docker-archive or oci-archive)
    Save(SaveArgs),
    /// Read images from an archive
    Load(LoadArgs),
    /// Remove untagged images and unreferenced data
    Prune(PruneArgs),
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// List containers
    Ps(PsArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Start an exited container again
    Start(StartArgs),
    /// Make an image from a container's changes
    Commit(CommitArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out of a registry
    Logout(LogoutArgs),
    /// List the repositories of a registry
    Catalog(CatalogArgs),
    /// List the tags of a repository
    Tags(TagsArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
}

/// What `build --call` asks for instead of a build.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CallKind {
    /// List the stages (name, base, line, description)
    Targets,
    /// List the build arguments the target uses (name, value, description)
    Outline,
}

/// `hoist build`
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Build context directory (`-`: a tar of it, or only a Dockerfile, on stdin)
    #[arg(default_value = ".")]
    pub context: std::path::PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` for stdin)
    #[arg(short, long)]
    pub file: Option<std::path::PathBuf>,
    /// Print information about the Dockerfile instead of building
    #[arg(long, value_enum)]
    pub call: Option<CallKind>,
    /// Output format of --call
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// The stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set a build argument (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Name the image (repeatable)
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// Do not use the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull base images, even when they are in the store
    #[arg(long)]
    pub pull: bool,
    /// Network of RUN steps
    #[arg(long, value_enum, default_value = "default")]
    pub network: BuildNetwork,
    /// Add a label to the image (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Write the image ID to this file
    #[arg(long)]
    pub iidfile: Option<std::path::PathBuf>,
    /// Target platform (os/arch[/variant]); RUN needs it to be the host's
    #[arg(long)]
    pub platform: Option<String>,
    /// Also write the result: type=docker|oci,dest=FILE (an image archive) or type=tar,dest=FILE
    /// (the root filesystem); `-` for stdout
    #[arg(short, long)]
    pub output: Option<String>,
    /// Grant an entitlement: security.insecure (lets RUN --security=insecure run privileged)
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// Reproducible output: SOURCE_DATE_EPOCH (0 when unset) for every time in the image
    #[arg(long)]
    pub reproducible: bool,
    /// A secret for RUN --mount=type=secret (id=ID,src=PATH or id=ID,env=VAR; repeatable)
    #[arg(long = "secret", value_name = "id=ID,src=PATH")]
    pub secrets: Vec<String>,
    /// An SSH agent socket for RUN --mount=type=ssh (default, or ID=SOCKET; repeatable)
    #[arg(long = "ssh", value_name = "ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// Progress output
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
}

/// Network modes of RUN steps in a build.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BuildNetwork {
    /// The host's network (BuildKit's default for RUN)
    Default,
    /// Only loopback
    None,
    /// The host's network
    Host,
}

/// How build progress is shown.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ProgressMode {
    /// Plain lines on stderr (no TTY rendering yet)
    Auto,
    /// Plain lines on stderr
    Plain,
    /// Nothing but errors
    Quiet,
    /// One JSON object per event on stderr
    Json,
}

/// Output format of listing commands.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// One JSON object per line.
    Json,
}

/// `hoist images`
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Show full image IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images whose repository matches (e.g. `busybox`)
    pub repository: Option<String>,
}

/// `hoist inspect`
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Images (name, ID or digest)
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist history`
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Image (name, ID or digest)
    pub image: String,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
}

/// `hoist tag`
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Existing image (name, ID or digest)
    pub source: String,
    /// New name
    pub target: String,
}

/// `hoist rmi`
#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Remove the image even when it has several names
    #[arg(short, long)]
    pub force: bool,
    /// Images (name, ID or digest)
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist import`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Tarball of a root filesystem (plain, gzip or zstd), or `-` for stdin
    pub file: String,
    /// Name for the new image
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the image config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message for the history entry
    #[arg(short, long)]
    pub message: Option<String>,
    /// Platform of the image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
}

/// `hoist export`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Container (name or ID) or image (name, ID or digest)
    pub image: String,
    /// Output file (stdout when absent)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// Archive formats of `save`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SaveFormat {
    /// docker's archive format (what `docker save` writes)
    DockerArchive,
    /// An OCI image layout in a tar
    OciArchive,
}

/// `hoist save`
#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Output file (stdout when absent)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: SaveFormat,
    /// Images (name, ID or digest)
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `hoist load`
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Archive to read (stdin when absent)
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print nothing
    #[arg(short, long)]
    pub quiet: bool,
}

/// `hoist prune`
#[derive(Args, Debug)]
pub struct PruneArgs {}

/// Network modes of `run`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum NetworkMode {
    /// Only loopback
    None,
    /// The host's network
    Host,
}

/// `hoist run`
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Pull the image: missing (when not in the store), always, never
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: crate::transfer::PullPolicy,
    /// A name for the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to pass the host's value)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines)
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User: uid[:gid] or name[:group]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Override the image's ENTRYPOINT (empty string: none)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Bind mount: HOST:CONTAINER[:ro]
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Container hostname
    #[arg(long)]
    pub hostname: Option<String>,
    /// Network mode
    #[arg(long, value_enum, default_value = "none")]
    pub network: NetworkMode,
    /// Mount the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// All capabilities, no masked paths
    #[arg(long)]
    pub privileged: bool,
    /// Delegate to an external OCI runtime (e.g. /usr/sbin/runc) with a bundle hoist writes
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// Keep stdin open (otherwise the container reads /dev/null)
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Add a Linux capability (or ALL)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a Linux capability (or ALL)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Memory limit (e.g. 32m, 1g)
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap)
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 1.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may use (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The image
    pub image: String,
    /// Command and arguments (default: the image's)
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

/// `hoist ps`
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default: running only)
    #[arg(short, long)]
    pub all: bool,
    /// Only show IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// `hoist rm`
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Containers (name or ID)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `hoist start`
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach to its output and wait (the only mode: hoist has no daemon)
    #[arg(short, long)]
    pub attach: bool,
    /// Container (name or ID)
    pub container: String,
}

/// `hoist commit`
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Container (name or ID)
    pub container: String,
    /// Name for the new image
    pub reference: Option<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the new image's config
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
}

/// `hoist pull`
#[derive(Args, Debug)]
pub struct PullArgs {
    /// The image: NAME[:TAG|@DIGEST]
    pub image: String,
    /// Platform of the image to pull: os/arch[/variant] (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull every platform of a multi-platform image
    #[arg(short = 'a', long = "all-platforms")]
    pub all_platforms: bool,
    /// Progress output: auto (bars on a terminal), plain, quiet
    #[arg(long, value_name = "auto|plain|quiet")]
    pub progress: Option<String>,
    /// Print only the result
    #[arg(short, long)]
    pub quiet: bool,
}

/// Layer compression for `push`.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CompressionArg {
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

/// `hoist push`
#[derive(Args, Debug)]
pub struct PushArgs {
    /// The local image (NAME[:TAG] or ID)
    pub image: String,
    /// Where to push it (default: the image's own name)
    pub destination: Option<String>,
    /// Compression of layers stored uncompressed
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Compression level (gzip 1-9, zstd 1-19)
    #[arg(long = "compression-level")]
    pub compression_level: Option<i32>,
    /// Progress output: auto (bars on a terminal), plain, quiet
    #[arg(long, value_name = "auto|plain|quiet")]
    pub progress: Option<String>,
    /// Print only the result
    #[arg(short, long)]
    pub quiet: bool,
}

/// `hoist login`
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The registry (HOST[:PORT]; default docker.io)
    pub registry: Option<String>,
    /// User name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: this one shows in the process list)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// The auth file to write (default: $REGISTRY_AUTH_FILE, else
    /// $XDG_RUNTIME_DIR/containers/auth.json, else ~/.docker/config.json)
    #[arg(long = "authfile")]
    pub authfile: Option<PathBuf>,
}

/// `hoist logout`
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry (HOST[:PORT]; default docker.io)
    pub registry: Option<String>,
    /// The auth file to edit
    #[arg(long = "authfile")]
    pub authfile: Option<PathBuf>,
}

/// `hoist catalog`
#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// The registry (HOST[:PORT])
    pub registry: String,
}

/// `hoist tags`
#[derive(Args, Debug)]
pub struct TagsArgs {
    /// The repository (NAME, e.g. localhost:5000/busybox)
    pub repository: String,
}
