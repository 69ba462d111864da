//! Container records: `containers/<id>/` holds a container's overlay upper and work dirs, its
//! generated /etc files, `image` (the manifest digest, a GC root) and `config.json` (this
//! record). Records are rewritten atomically.

use std::path::{Path, PathBuf};

use oci::Digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{IoContext, Result, StoreError};
use crate::fsutil::write_atomic;

/// The state of a container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Created, never started.
    Created,
    /// Running, supervised by the hoist process `pid`.
    Running,
    /// Exited with `exit_code`.
    Exited,
}

/// What `hoist ps` and friends know about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// 64 hex characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's manifest digest.
    pub image_digest: Digest,
    /// The command line.
    pub command: Vec<String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// State.
    pub state: State,
    /// The hoist process supervising it while running.
    pub pid: Option<i32>,
    /// Exit code once exited.
    pub exit_code: Option<i32>,
    /// RFC 3339 time it exited.
    pub finished: Option<String>,
    /// The sandbox spec, to start it again.
    pub spec: Value,
}

/// The containers of a store.
#[derive(Clone, Debug)]
pub struct Containers {
    dir: PathBuf,
}

impl Containers {
    /// The containers under `root/containers`.
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join("containers"),
        }
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes a record (atomically).
    pub fn save(&self, r: &Record) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(r).map_err(|e| StoreError::Json {
            what: format!("container {}", r.name),
            reason: e.to_string(),
        })?;
        write_atomic(&self.dir(&r.id).join("config.json"), &bytes)
    }

    /// Every container with a record, newest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).at("read dir", &self.dir),
        };
        for e in rd {
            let e = e.at("read dir", &self.dir)?;
            let p = e.path().join("config.json");
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let mut r: Record = serde_json::from_slice(&bytes).map_err(|err| StoreError::Json {
                what: format!("`{}`", p.display()),
                reason: err.to_string(),
            })?;
            if r.state == State::Running && !r.pid.is_some_and(alive) {
                // Its supervisor died without recording an exit.
                r.state = State::Exited;
            }
            out.push(r);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Finds a container by name, full ID or unique ID prefix.
    pub fn find(&self, what: &str) -> Result<Record> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == what || r.id == what) {
            return Ok(r.clone());
        }
        let hits: Vec<&Record> = all
            .iter()
            .filter(|r| !what.is_empty() && r.id.starts_with(what))
            .collect();
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::ContainerNotFound(what.to_string())),
            _ => Err(StoreError::AmbiguousId(what.to_string())),
        }
    }
}

/// True when process `pid` exists.
pub fn alive(pid: i32) -> bool {
    let exists = rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    // A zombie has exited: only its parent has yet to reap it.
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            // `pid (comm) S ...`: the state follows the last `)`.
            s.rsplit_once(')')
                .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
}
