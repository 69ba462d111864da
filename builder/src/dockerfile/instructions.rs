//! Typed instructions grouped into stages: the layer between the parser's AST and the build
//! graph. Flags are checked per instruction (BuildKit's sets), `--mount` specs are parsed, and
//! every error names the Dockerfile and line, e.g. `Dockerfile:7: unknown flag --chmod for RUN`.
//! Words are kept as written: ARG/ENV expansion happens when a stage is evaluated, with the
//! shell lexer and the variables in scope at that point.

use std::collections::BTreeMap;
use std::fmt;

use super::parser::{Arg, Dockerfile, Heredoc, Node};
use super::shell::{Env, Lexer, ShellError};

/// A 1-based inclusive line range in the Dockerfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First line.
    pub start: usize,
    /// Last line.
    pub end: usize,
}

/// A command in exec (JSON) or shell form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `["prog", "arg"]`: run directly.
    Exec(Vec<String>),
    /// `prog arg`: run through the SHELL.
    Shell(String),
}

/// The kind of a `RUN --mount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// `type=bind` (the default): a directory of the context or another stage, read-only unless `rw`.
    Bind,
    /// `type=cache`: a persistent cache directory.
    Cache,
    /// `type=tmpfs`.
    Tmpfs,
    /// `type=secret`: a secret file (or env var), never stored in a layer.
    Secret,
    /// `type=ssh`: an SSH agent socket.
    Ssh,
}

/// A `RUN --mount=...` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The mount type.
    pub kind: MountKind,
    /// `target`/`dst`/`destination`.
    pub target: Option<String>,
    /// `source`/`src`.
    pub source: Option<String>,
    /// `from`: a stage or image for bind and cache mounts.
    pub from: Option<String>,
    /// `id` (cache, secret, ssh).
    pub id: Option<String>,
    /// Read-only (`ro`/`readonly`; bind mounts default to read-only).
    pub readonly: bool,
    /// `sharing=shared|private|locked` (cache).
    pub sharing: Option<String>,
    /// `mode` in octal (cache, secret, ssh).
    pub mode: Option<u32>,
    /// `uid` (cache, secret, ssh).
    pub uid: Option<u32>,
    /// `gid` (cache, secret, ssh).
    pub gid: Option<u32>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `size` in bytes (tmpfs).
    pub size: Option<u64>,
    /// `env`: expose a secret as this environment variable.
    pub env: Option<String>,
}

/// HEALTHCHECK settings; durations in nanoseconds as docker stores them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: Option<i64>,
    /// `--timeout`.
    pub timeout: Option<i64>,
    /// `--start-period`.
    pub start_period: Option<i64>,
    /// `--start-interval`.
    pub start_interval: Option<i64>,
    /// `--retries`.
    pub retries: Option<i64>,
}

/// COPY and ADD options (ADD-only ones are `None`/false for COPY and vice versa).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CopyOptions {
    /// `--from` (COPY).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY).
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `--checksum` (ADD).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD).
    pub keep_git_dir: bool,
    /// `--unpack` (ADD): `None` means the default (unpack local archives).
    pub unpack: Option<bool>,
}

/// One instruction with its arguments as written (not yet expanded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// `RUN`.
    Run {
        /// The command.
        command: Command,
        /// Heredocs (the first one is the script when the command is only `<<EOF`).
        heredocs: Vec<Heredoc>,
        /// `--mount` specs.
        mounts: Vec<Mount>,
        /// `--network=default|none|host`.
        network: Option<String>,
        /// `--security=sandbox|insecure`.
        security: Option<String>,
    },
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `SHELL` (always exec form).
    Shell(Vec<String>),
    /// `LABEL k=v ...`: raw key and value words.
    Label(Vec<(String, String)>),
    /// `MAINTAINER`.
    Maintainer(String),
    /// `EXPOSE` ports as written.
    Expose(Vec<String>),
    /// `ENV k=v ...`: raw key and value words.
    Env(Vec<(String, String)>),
    /// `ADD`.
    Add {
        /// Sources (words as written).
        sources: Vec<String>,
        /// Destination.
        dest: String,
        /// Options.
        options: CopyOptions,
        /// Heredoc sources.
        heredocs: Vec<Heredoc>,
    },
    /// `COPY`.
    Copy {
        /// Sources (words as written).
        sources: Vec<String>,
        /// Destination.
        dest: String,
        /// Options.
        options: CopyOptions,
        /// Heredoc sources.
        heredocs: Vec<Heredoc>,
    },
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `USER`.
    User(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `ARG` declarations.
    Arg(Vec<ArgDecl>),
    /// `ONBUILD`: the trigger's text as stored in the image config.
    Onbuild(String),
    /// `STOPSIGNAL`.
    Stopsignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
}

/// One `ARG name[=default]`, with the comment above it (its description).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default as written (quotes not yet removed), if any.
    pub default: Option<String>,
    /// The comment lines right above the ARG, joined.
    pub description: String,
}

/// An instruction with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The instruction.
    pub instruction: Instruction,
    /// Its lines.
    pub span: Span,
    /// The logical line as written (for history and errors).
    pub original: String,
}

/// A build stage: `FROM base [AS name]` and the instructions up to the next FROM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages, from 0.
    pub index: usize,
    /// The name after `AS`, lowercased.
    pub name: Option<String>,
    /// The base as written (may use global ARGs).
    pub base: String,
    /// `--platform` as written.
    pub platform: Option<String>,
    /// The FROM line(s).
    pub span: Span,
    /// The comment above FROM (the stage's description).
    pub description: String,
    /// The instructions.
    pub instructions: Vec<Located>,
}

/// A Dockerfile as stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stages {
    /// Global ARGs declared before the first FROM.
    pub meta_args: Vec<(ArgDecl, Span)>,
    /// The stages in file order.
    pub stages: Vec<Stage>,
}

/// An instruction that is not valid, with the file and line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct InstructionError {
    /// The Dockerfile's name as given by the user.
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Stages {
    /// Groups the parsed Dockerfile into stages of typed instructions. `file` names the
    /// Dockerfile in errors.
    pub fn from_dockerfile(df: &Dockerfile, file: &str) -> Result<Self, InstructionError> {
        let mut meta_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &df.children {
            let err = |message: String| InstructionError {
                file: file.to_string(),
                line: node.start_line,
                message,
            };
            let span = Span {
                start: node.start_line,
                end: node.end_line,
            };
            if node.keyword == "from" {
                let flags = Flags::parse(node, &[("platform", FlagKind::Str)]).map_err(err)?;
                let words: Vec<&str> = node.str_args().collect();
                let (base, name) = match words.as_slice() {
                    [base] => (base.to_string(), None),
                    [base, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                        let name = name.to_ascii_lowercase();
                        if !valid_stage_name(&name) {
                            return Err(err(format!(
                                "invalid name for build stage: `{name}`: a name starts with a letter and holds only letters, digits, `-`, `_` and `.`"
                            )));
                        }
                        if stages
                            .iter()
                            .any(|s| s.name.as_deref() == Some(name.as_str()))
                        {
                            return Err(err(format!("duplicate stage name `{name}`")));
                        }
                        (base.to_string(), Some(name))
                    }
                    _ => {
                        return Err(err(
                            "FROM requires either one or three arguments: FROM image [AS name]"
                                .into(),
                        ));
                    }
                };
                stages.push(Stage {
                    index: stages.len(),
                    name,
                    base,
                    platform: flags.string("platform"),
                    span,
                    description: node.comments.join("\n"),
                    instructions: Vec::new(),
                });
                continue;
            }
            let instruction = typed(node).map_err(err)?;
            match stages.last_mut() {
                Some(stage) => stage.instructions.push(Located {
                    instruction,
                    span,
                    original: node.original.clone(),
                }),
                None => match instruction {
                    Instruction::Arg(decls) => {
                        meta_args.extend(decls.into_iter().map(|d| (d, span)))
                    }
                    _ => {
                        return Err(err(format!(
                            "{} before the first FROM: a Dockerfile must start with FROM (only ARG may come before it)",
                            node.keyword.to_uppercase()
                        )));
                    }
                },
            }
        }
        if stages.is_empty() {
            let line = df.children.last().map_or(1, |n| n.end_line);
            return Err(InstructionError {
                file: file.to_string(),
                line,
                message: "no FROM instruction: the Dockerfile has no build stage".into(),
            });
        }
        Ok(Self { meta_args, stages })
    }

    /// Finds a stage by name (case-insensitive) or index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }

    /// The indexes of the stages `target` needs (itself included), in file order: its base
    /// chain, `COPY --from` and `RUN --mount=from=` sources.
    pub fn needed(&self, target: usize) -> Vec<usize> {
        let mut seen = vec![false; self.stages.len()];
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if i >= seen.len() || seen[i] {
                continue;
            }
            seen[i] = true;
            let stage = &self.stages[i];
            let mut refs: Vec<&str> = vec![stage.base.as_str()];
            for l in &stage.instructions {
                match &l.instruction {
                    Instruction::Copy { options, .. } => refs.extend(options.from.as_deref()),
                    Instruction::Run { mounts, .. } => {
                        refs.extend(mounts.iter().filter_map(|m| m.from.as_deref()))
                    }
                    _ => {}
                }
            }
            for r in refs {
                // Only earlier stages can be referred to by name or index.
                if let Some(dep) = self.stage(r).filter(|d| d.index < i) {
                    todo.push(dep.index);
                }
            }
        }
        (0..seen.len()).filter(|&i| seen[i]).collect()
    }
}

impl Instruction {
    /// The instruction with its words expanded as BuildKit expands them, with `env` (the ARGs
    /// and ENV in scope): ENV and LABEL keys and values, ADD/COPY sources, destination and
    /// `--chown`/`--chmod`/`--checksum`/`--exclude`, EXPOSE (split into words), VOLUME, USER,
    /// WORKDIR, STOPSIGNAL, ARG defaults and the fields of RUN `--mount` and `--network`.
    /// RUN, CMD, ENTRYPOINT and HEALTHCHECK commands are left to the shell, SHELL, MAINTAINER and
    /// ONBUILD's stored text are kept verbatim, as BuildKit does. `COPY --from` and `RUN
    /// --mount=from=` stay as written: they name what a stage depends on, and BuildKit expands
    /// them with the ARGs before the first FROM only (the executor does).
    pub fn expand<E: Env + ?Sized>(&self, lexer: &Lexer, env: &E) -> Result<Self, ShellError> {
        let w = |s: &str| lexer.process_word(s, env).map(|e| e.value);
        let opt = |s: &Option<String>| s.as_deref().map(w).transpose();
        let all = |v: &[String]| v.iter().map(|s| w(s)).collect::<Result<Vec<_>, _>>();
        let pairs = |v: &[(String, String)]| {
            v.iter()
                .map(|(k, x)| Ok((w(k)?, w(x)?)))
                .collect::<Result<Vec<_>, ShellError>>()
        };
        let copy_opts = |o: &CopyOptions| -> Result<CopyOptions, ShellError> {
            Ok(CopyOptions {
                chown: opt(&o.chown)?,
                chmod: opt(&o.chmod)?,
                checksum: opt(&o.checksum)?,
                exclude: all(&o.exclude)?,
                ..o.clone()
            })
        };
        Ok(match self {
            Self::Env(kv) => Self::Env(pairs(kv)?),
            Self::Label(kv) => Self::Label(pairs(kv)?),
            Self::Add {
                sources,
                dest,
                options,
                heredocs,
            } => Self::Add {
                sources: all(sources)?,
                dest: w(dest)?,
                options: copy_opts(options)?,
                heredocs: heredocs.clone(),
            },
            Self::Copy {
                sources,
                dest,
                options,
                heredocs,
            } => Self::Copy {
                sources: all(sources)?,
                dest: w(dest)?,
                options: copy_opts(options)?,
                heredocs: heredocs.clone(),
            },
            Self::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lexer.process_words(p, env)?);
                }
                Self::Expose(out)
            }
            Self::Volume(v) => Self::Volume(all(v)?),
            Self::User(u) => Self::User(w(u)?),
            Self::Workdir(d) => Self::Workdir(w(d)?),
            Self::Stopsignal(sig) => Self::Stopsignal(w(sig)?),
            Self::Arg(decls) => Self::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            default: opt(&d.default)?,
                            ..d.clone()
                        })
                    })
                    .collect::<Result<Vec<_>, ShellError>>()?,
            ),
            Self::Run {
                command,
                heredocs,
                mounts,
                network,
                security,
            } => Self::Run {
                command: command.clone(),
                heredocs: heredocs.clone(),
                mounts: mounts
                    .iter()
                    .map(|m| {
                        Ok(Mount {
                            target: opt(&m.target)?,
                            source: opt(&m.source)?,
                            id: opt(&m.id)?,
                            env: opt(&m.env)?,
                            ..m.clone()
                        })
                    })
                    .collect::<Result<Vec<_>, ShellError>>()?,
                network: opt(network)?,
                security: security.clone(),
            },
            other => other.clone(),
        })
    }
}

/// Parses the ONBUILD triggers of a base image (as stored in its config) into instructions to
/// run at the start of a stage built on it. `image` names the base in errors.
pub fn parse_triggers(triggers: &[String], image: &str) -> Result<Vec<Located>, InstructionError> {
    let file = format!("ONBUILD trigger of `{image}`");
    let mut out = Vec::with_capacity(triggers.len());
    for (i, t) in triggers.iter().enumerate() {
        let err = |message: String| InstructionError {
            file: file.clone(),
            line: i + 1,
            message,
        };
        let df = super::parser::parse(t.as_bytes()).map_err(|e| err(e.to_string()))?;
        let [node] = df.children.as_slice() else {
            return Err(err(format!("`{t}` is not exactly one instruction")));
        };
        if matches!(node.keyword.as_str(), "onbuild" | "from" | "maintainer") {
            return Err(err(format!(
                "{} isn't allowed as an ONBUILD trigger",
                node.keyword.to_uppercase()
            )));
        }
        let instruction = typed(node).map_err(err)?;
        out.push(Located {
            instruction,
            span: Span {
                start: i + 1,
                end: i + 1,
            },
            original: t.clone(),
        });
    }
    Ok(out)
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn str_args(node: &Node) -> Vec<String> {
    node.str_args().map(str::to_string).collect()
}

fn command(node: &Node) -> Command {
    if node.json {
        Command::Exec(str_args(node))
    } else {
        Command::Shell(node.rest.clone())
    }
}

fn typed(node: &Node) -> Result<Instruction, String> {
    let kw = node.keyword.as_str();
    let no_flags = || Flags::parse(node, &[]);
    let need_args = |n: usize| {
        if node.args.len() < n {
            Err(format!(
                "{} requires {}",
                kw.to_uppercase(),
                if n == 1 {
                    "at least one argument".to_string()
                } else {
                    format!("at least {n} arguments")
                }
            ))
        } else {
            Ok(())
        }
    };
    Ok(match kw {
        "run" => {
            let f = Flags::parse(
                node,
                &[
                    ("mount", FlagKind::List),
                    ("network", FlagKind::Str),
                    ("security", FlagKind::Str),
                ],
            )?;
            if node.args.is_empty() && node.heredocs.is_empty() {
                return Err("RUN requires at least one argument".into());
            }
            let mounts = f
                .list("mount")
                .iter()
                .map(|m| parse_mount(m))
                .collect::<Result<Vec<_>, _>>()?;
            let network = f.string("network");
            if let Some(n) = &network
                && !matches!(n.as_str(), "default" | "none" | "host")
            {
                return Err(format!(
                    "invalid --network `{n}` for RUN: use default, none or host"
                ));
            }
            let security = f.string("security");
            if let Some(s) = &security
                && !matches!(s.as_str(), "sandbox" | "insecure")
            {
                return Err(format!(
                    "invalid --security `{s}` for RUN: use sandbox or insecure"
                ));
            }
            Instruction::Run {
                command: command(node),
                heredocs: node.heredocs.clone(),
                mounts,
                network,
                security,
            }
        }
        "cmd" => {
            no_flags()?;
            Instruction::Cmd(command(node))
        }
        "entrypoint" => {
            no_flags()?;
            Instruction::Entrypoint(command(node))
        }
        "shell" => {
            no_flags()?;
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]".into());
            }
            need_args(1)?;
            Instruction::Shell(str_args(node))
        }
        "label" | "env" => {
            no_flags()?;
            need_args(1)?;
            let words = str_args(node);
            let pairs = words
                .chunks(3)
                .filter(|c| c.len() >= 2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect();
            if kw == "env" {
                Instruction::Env(pairs)
            } else {
                Instruction::Label(pairs)
            }
        }
        "maintainer" => {
            no_flags()?;
            need_args(1)?;
            Instruction::Maintainer(node.rest.clone())
        }
        "expose" => {
            no_flags()?;
            need_args(1)?;
            Instruction::Expose(str_args(node))
        }
        "add" | "copy" => {
            let spec: &[(&str, FlagKind)] = if kw == "add" {
                &[
                    ("chown", FlagKind::Str),
                    ("chmod", FlagKind::Str),
                    ("link", FlagKind::Bool),
                    ("checksum", FlagKind::Str),
                    ("keep-git-dir", FlagKind::Bool),
                    ("exclude", FlagKind::List),
                    ("unpack", FlagKind::Bool),
                ]
            } else {
                &[
                    ("from", FlagKind::Str),
                    ("chown", FlagKind::Str),
                    ("chmod", FlagKind::Str),
                    ("link", FlagKind::Bool),
                    ("parents", FlagKind::Bool),
                    ("exclude", FlagKind::List),
                ]
            };
            let f = Flags::parse(node, spec)?;
            let mut words = str_args(node);
            let min = if node.heredocs.is_empty() { 2 } else { 1 };
            if words.len() < min {
                return Err(format!(
                    "{} requires at least two arguments, but only {} provided: {} SOURCE... DEST",
                    kw.to_uppercase(),
                    words.len(),
                    kw.to_uppercase()
                ));
            }
            let dest = words.pop().unwrap_or_default();
            let options = CopyOptions {
                from: f.string("from"),
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.bool("link"),
                parents: f.bool("parents"),
                exclude: f.list("exclude").to_vec(),
                checksum: f.string("checksum"),
                keep_git_dir: f.bool("keep-git-dir"),
                unpack: f.bool_opt("unpack"),
            };
            if kw == "add" {
                Instruction::Add {
                    sources: words,
                    dest,
                    options,
                    heredocs: node.heredocs.clone(),
                }
            } else {
                Instruction::Copy {
                    sources: words,
                    dest,
                    options,
                    heredocs: node.heredocs.clone(),
                }
            }
        }
        "volume" => {
            no_flags()?;
            need_args(1)?;
            let vols = str_args(node);
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Instruction::Volume(vols)
        }
        "user" | "workdir" | "stopsignal" => {
            no_flags()?;
            need_args(1)?;
            let v = node.rest.clone();
            match kw {
                "user" => Instruction::User(v),
                "workdir" => Instruction::Workdir(v),
                _ => Instruction::Stopsignal(v),
            }
        }
        "arg" => {
            no_flags()?;
            need_args(1)?;
            let description = node.comments.join("\n");
            let decls = str_args(node)
                .into_iter()
                .map(|w| {
                    let (name, default) = match w.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (w.clone(), None),
                    };
                    if name.is_empty() {
                        return Err(format!("ARG names a variable with an empty name: `{w}`"));
                    }
                    Ok(ArgDecl {
                        name,
                        default,
                        description: description.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Instruction::Arg(decls)
        }
        "onbuild" => {
            no_flags()?;
            let Some(Arg::Nested(inner)) = node.args.first() else {
                return Err("ONBUILD requires at least one argument".into());
            };
            match inner.keyword.as_str() {
                "onbuild" => {
                    return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                "from" | "maintainer" => {
                    return Err(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.keyword.to_uppercase()
                    ));
                }
                _ => {}
            }
            typed(inner)?;
            Instruction::Onbuild(inner.original.trim().to_string())
        }
        "healthcheck" => {
            let f = Flags::parse(
                node,
                &[
                    ("interval", FlagKind::Str),
                    ("timeout", FlagKind::Str),
                    ("start-period", FlagKind::Str),
                    ("start-interval", FlagKind::Str),
                    ("retries", FlagKind::Str),
                ],
            )?;
            let words = str_args(node);
            let Some(kind) = words.first() else {
                return Err("HEALTHCHECK requires an argument: NONE or CMD ...".into());
            };
            let test = match kind.to_ascii_uppercase().as_str() {
                "NONE" => {
                    if words.len() > 1 {
                        return Err("HEALTHCHECK NONE takes no other arguments".into());
                    }
                    vec!["NONE".to_string()]
                }
                "CMD" => {
                    let rest: Vec<String> = words[1..].to_vec();
                    if rest.is_empty() {
                        return Err("HEALTHCHECK CMD requires a command".into());
                    }
                    if node.json {
                        std::iter::once("CMD".to_string()).chain(rest).collect()
                    } else {
                        vec!["CMD-SHELL".to_string(), rest.join(" ")]
                    }
                }
                other => {
                    return Err(format!(
                        "unknown type `{other}` in HEALTHCHECK: use CMD or NONE"
                    ));
                }
            };
            let dur = |name: &str| -> Result<Option<i64>, String> {
                f.string(name)
                    .map(|v| {
                        parse_duration(&v).ok_or_else(|| {
                            format!(
                                "invalid duration `{v}` for --{name}: use e.g. 30s, 1m30s, 500ms"
                            )
                        })
                    })
                    .transpose()
            };
            let retries = f
                .string("retries")
                .map(|v| {
                    v.parse::<i64>()
                        .ok()
                        .filter(|r| *r >= 0)
                        .ok_or_else(|| format!("invalid --retries `{v}`: a whole number >= 0"))
                })
                .transpose()?;
            Instruction::Healthcheck(Healthcheck {
                test,
                interval: dur("interval")?,
                timeout: dur("timeout")?,
                start_period: dur("start-period")?,
                start_interval: dur("start-interval")?,
                retries,
            })
        }
        other => return Err(format!("unknown instruction: {}", other.to_uppercase())),
    })
}

/// How a flag takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    /// `--x=value`, once.
    Str,
    /// `--x`, `--x=true|false`.
    Bool,
    /// `--x=value`, repeatable.
    List,
}

struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    fn parse(node: &Node, spec: &[(&str, FlagKind)]) -> Result<Self, String> {
        let kw = node.keyword.to_uppercase();
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for raw in &node.flags {
            let body = raw.strip_prefix("--").unwrap_or(raw);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(format!("unknown flag --{name} for {kw}"));
            };
            let value = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" | "false" => v.to_ascii_lowercase(),
                    _ => {
                        return Err(format!(
                            "expecting boolean value for flag --{name}, not `{v}`"
                        ));
                    }
                },
                (_, None) => return Err(format!("missing a value on flag --{name} for {kw}")),
                (_, Some(v)) => v.to_string(),
            };
            let slot = values.entry(name.to_string()).or_default();
            if *kind != FlagKind::List && !slot.is_empty() {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            slot.push(value);
        }
        Ok(Self { values })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.first()).cloned()
    }

    fn bool(&self, name: &str) -> bool {
        self.bool_opt(name).unwrap_or(false)
    }

    fn bool_opt(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    fn list(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Splits a CSV field list (`a=b,"c=d,e"`), as BuildKit reads `--mount`.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote in --mount `{s}`"));
    }
    out.push(cur);
    Ok(out)
}

fn parse_mount(spec: &str) -> Result<Mount, String> {
    let fields = csv_fields(spec)?;
    let mut kind = MountKind::Bind;
    for f in &fields {
        if let Some(t) = f.strip_prefix("type=") {
            kind = match t {
                "bind" => MountKind::Bind,
                "cache" => MountKind::Cache,
                "tmpfs" => MountKind::Tmpfs,
                "secret" => MountKind::Secret,
                "ssh" => MountKind::Ssh,
                other => {
                    return Err(format!(
                        "unsupported mount type `{other}` in --mount `{spec}`: use bind, cache, tmpfs, secret or ssh"
                    ));
                }
            };
        }
    }
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        id: None,
        readonly: kind == MountKind::Bind,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
    };
    let tname = match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    };
    for f in fields.iter().filter(|f| !f.is_empty()) {
        let (key, value) = match f.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (f.to_ascii_lowercase(), None),
        };
        let bad = || format!("unexpected key `{key}` in `{f}` for mount type {tname}");
        let need = |v: &Option<String>| {
            v.clone()
                .ok_or_else(|| format!("`{key}` in --mount `{spec}` needs a value"))
        };
        let flag = |v: &Option<String>| -> Result<bool, String> {
            match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(o) => Err(format!(
                    "invalid value `{o}` for `{key}` in --mount `{spec}`"
                )),
            }
        };
        let num = |v: &Option<String>, radix: u32| -> Result<u32, String> {
            let s = need(v)?;
            u32::from_str_radix(&s, radix)
                .map_err(|_| format!("invalid `{key}={s}` in --mount `{spec}`"))
        };
        match key.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = Some(need(&value)?),
            "source" | "src" if kind != MountKind::Tmpfs => m.source = Some(need(&value)?),
            "from" if matches!(kind, MountKind::Bind | MountKind::Cache) => {
                m.from = Some(need(&value)?)
            }
            "id" if matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh) => {
                m.id = Some(need(&value)?)
            }
            "ro" | "readonly" if matches!(kind, MountKind::Bind | MountKind::Cache) => {
                m.readonly = flag(&value)?
            }
            "rw" | "readwrite" if matches!(kind, MountKind::Bind | MountKind::Cache) => {
                m.readonly = !flag(&value)?
            }
            "sharing" if kind == MountKind::Cache => {
                let v = need(&value)?;
                if !matches!(v.as_str(), "shared" | "private" | "locked") {
                    return Err(format!(
                        "invalid sharing `{v}` in --mount `{spec}`: use shared, private or locked"
                    ));
                }
                m.sharing = Some(v);
            }
            "mode" if matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh) => {
                m.mode = Some(num(&value, 8)?)
            }
            "uid" if matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh) => {
                m.uid = Some(num(&value, 10)?)
            }
            "gid" if matches!(kind, MountKind::Cache | MountKind::Secret | MountKind::Ssh) => {
                m.gid = Some(num(&value, 10)?)
            }
            "required" if matches!(kind, MountKind::Secret | MountKind::Ssh) => {
                m.required = flag(&value)?
            }
            "env" if kind == MountKind::Secret => m.env = Some(need(&value)?),
            "size" if kind == MountKind::Tmpfs => {
                let v = need(&value)?;
                m.size = Some(
                    parse_size(&v)
                        .ok_or_else(|| format!("invalid size `{v}` in --mount `{spec}`"))?,
                );
            }
            _ => return Err(bad()),
        }
    }
    if m.target.is_none() && matches!(kind, MountKind::Bind | MountKind::Cache | MountKind::Tmpfs) {
        return Err(format!(
            "--mount `{spec}`: mount type {tname} needs a target"
        ));
    }
    if kind == MountKind::Secret && m.target.is_none() && m.id.is_none() && m.env.is_none() {
        return Err(format!(
            "--mount `{spec}`: a secret mount needs an id or a target"
        ));
    }
    Ok(m)
}

/// A byte size: `1024`, `64m`, `1g`, `512k`.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// A Go duration (`1h2m3.5s`, `300ms`, `0`) in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u_end..];
        total += n * unit;
    }
    (total <= i64::MAX as f64).then_some(total as i64)
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exec(v) => write!(f, "{}", serde_json::to_string(v).map_err(|_| fmt::Error)?),
            Self::Shell(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;

    fn stages(src: &str) -> Result<Stages, InstructionError> {
        Stages::from_dockerfile(&parse(src.as_bytes()).expect("parses"), "Dockerfile")
    }

    #[test]
    fn groups_stages_and_meta_args() {
        let s = stages("# the version\nARG V=1\nFROM busybox:$V AS base\nRUN echo hi\n# final stage\nFROM base\nCOPY --from=base /a /b\n").unwrap();
        assert_eq!(s.meta_args[0].0.name, "V");
        assert_eq!(s.meta_args[0].0.description, "the version");
        assert_eq!(s.stages.len(), 2);
        assert_eq!(s.stages[0].name.as_deref(), Some("base"));
        assert_eq!(s.stages[1].span.start, 6);
        assert_eq!(s.needed(1), vec![0, 1]);
    }

    #[test]
    fn errors_name_file_line_and_flag() {
        let e = stages("FROM a\n\n\n\n\n\nRUN --chmod=1 x\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:7: unknown flag --chmod for RUN");
        let e = stages("RUN x\nFROM a\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Dockerfile:1: RUN before the first FROM"),
            "{e}"
        );
        let e = stages("FROM a\nFOO bar\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:2: unknown instruction: FOO");
        let e = stages("FROM a\nCOPY x\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("COPY requires at least two arguments"),
            "{e}"
        );
        let e = stages("FROM a\nSHELL /bin/sh -c\n").unwrap_err();
        assert!(e.to_string().contains("JSON form"), "{e}");
        assert!(stages("FROM a\nONBUILD ONBUILD RUN x\n").is_err());
    }

    #[test]
    fn flags_and_mounts() {
        let s = stages("FROM a\nRUN --mount=type=cache,target=/root/.cache,sharing=locked,id=pip --mount=type=secret,id=tok,required --network=none make\nCOPY --link --chmod=0755 --exclude=*.md --exclude=x a b /dst/\nADD --checksum=sha256:abc --unpack=false http://x/y.tgz /z\n").unwrap();
        let ins = &s.stages[0].instructions;
        let Instruction::Run {
            mounts,
            network,
            command,
            ..
        } = &ins[0].instruction
        else {
            panic!()
        };
        assert_eq!(mounts[0].kind, MountKind::Cache);
        assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache"));
        assert!(!mounts[0].readonly);
        assert_eq!(mounts[1].kind, MountKind::Secret);
        assert!(mounts[1].required);
        assert_eq!(network.as_deref(), Some("none"));
        assert_eq!(command, &Command::Shell("make".into()));
        let Instruction::Copy {
            sources,
            dest,
            options,
            ..
        } = &ins[1].instruction
        else {
            panic!()
        };
        assert_eq!(
            (sources.as_slice(), dest.as_str()),
            (&["a".to_string(), "b".to_string()][..], "/dst/")
        );
        assert!(options.link);
        assert_eq!(options.exclude, ["*.md", "x"]);
        let Instruction::Add { options, .. } = &ins[2].instruction else {
            panic!()
        };
        assert_eq!(options.unpack, Some(false));
        assert!(
            stages("FROM a\nRUN --mount=type=cache,target=/x,bogus=1 true\n")
                .unwrap_err()
                .to_string()
                .contains("unexpected key `bogus`")
        );
        assert!(stages("FROM a\nRUN --mount=type=bind true\n").is_err());
    }

    #[test]
    fn onbuild_stored_and_triggers_parsed() {
        let s = stages("FROM a\nONBUILD RUN echo hi\nONBUILD COPY --chown=1:1 . /src\n").unwrap();
        let triggers: Vec<String> = s.stages[0]
            .instructions
            .iter()
            .map(|l| match &l.instruction {
                Instruction::Onbuild(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(triggers, ["RUN echo hi", "COPY --chown=1:1 . /src"]);
        let parsed = parse_triggers(&triggers, "base:1").unwrap();
        assert!(matches!(parsed[0].instruction, Instruction::Run { .. }));
        let Instruction::Copy { options, .. } = &parsed[1].instruction else {
            panic!()
        };
        assert_eq!(options.chown.as_deref(), Some("1:1"));
        let e = parse_triggers(&["FROM x".to_string()], "base:1").unwrap_err();
        assert!(
            e.to_string().contains("ONBUILD trigger of `base:1`:1"),
            "{e}"
        );
    }

    #[test]
    fn expansion_follows_buildkits_rules() {
        let s = stages("FROM a\nENV $K=\"${V}-x\" B=$V\nCOPY --chown=$U:$U --from=$S src/$V /dst/$V/\nEXPOSE $P 53/udp\nRUN echo $V\nCMD echo $V\nWORKDIR /w/${V:-none}\nUSER $U\nRUN --mount=type=cache,target=/c/$V true\nONBUILD RUN echo $V\n").unwrap();
        let env = BTreeMap::from([
            ("K", "KEY"),
            ("V", "1"),
            ("U", "app"),
            ("S", "build"),
            ("P", "80 443"),
        ]);
        let lexer = Lexer::new('\\');
        let got: Vec<Instruction> = s.stages[0]
            .instructions
            .iter()
            .map(|l| l.instruction.expand(&lexer, &env).unwrap())
            .collect();
        assert_eq!(
            got[0],
            Instruction::Env(vec![("KEY".into(), "1-x".into()), ("B".into(), "1".into())])
        );
        let Instruction::Copy {
            sources,
            dest,
            options,
            ..
        } = &got[1]
        else {
            panic!()
        };
        assert_eq!((sources[0].as_str(), dest.as_str()), ("src/1", "/dst/1/"));
        assert_eq!(
            (options.chown.as_deref(), options.from.as_deref()),
            (Some("app:app"), Some("$S")),
            "--from is left for the meta ARGs"
        );
        assert_eq!(
            got[2],
            Instruction::Expose(vec!["80".into(), "443".into(), "53/udp".into()])
        );
        assert_eq!(
            got[3], s.stages[0].instructions[3].instruction,
            "RUN is left to the shell"
        );
        assert_eq!(
            got[4], s.stages[0].instructions[4].instruction,
            "CMD is left to the shell"
        );
        assert_eq!(got[5], Instruction::Workdir("/w/1".into()));
        assert_eq!(got[6], Instruction::User("app".into()));
        let Instruction::Run { mounts, .. } = &got[7] else {
            panic!()
        };
        assert_eq!(mounts[0].target.as_deref(), Some("/c/1"));
        assert_eq!(
            got[8],
            Instruction::Onbuild("RUN echo $V".into()),
            "ONBUILD text is stored verbatim"
        );
    }

    #[test]
    fn healthcheck_and_durations() {
        let s = stages(
            "FROM a\nHEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/ || exit 1\n",
        )
        .unwrap();
        let Instruction::Healthcheck(h) = &s.stages[0].instructions[0].instruction else {
            panic!()
        };
        assert_eq!(h.test, ["CMD-SHELL", "curl -f http://x/ || exit 1"]);
        assert_eq!(h.interval, Some(90_000_000_000));
        assert_eq!(h.retries, Some(3));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert!(stages("FROM a\nHEALTHCHECK --interval=soon CMD x\n").is_err());
    }
}
