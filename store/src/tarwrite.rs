//! A deterministic tar writer for filesystem objects: ustar headers with PAX records for long
//! names and xattrs, hard links detected by inode, no user/group names, modes and owners as on
//! disk, optional clamping of mtimes (SOURCE_DATE_EPOCH). Used for layer diffs, flattened
//! exports and archives.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

const BLOCK: usize = 512;

/// Writes tar entries to `W`.
pub struct TarWriter<W: Write> {
    out: W,
    links: HashMap<(u64, u64), Vec<u8>>,
    clamp_mtime: Option<u64>,
    buf: Vec<u8>,
    ids: Option<IdMapping>,
}

/// Consecutive ids: `size` ids from `container` inside a user namespace are `host` on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// First id inside.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// How many.
    pub size: u32,
}

/// The id maps of a rootless user namespace, read backwards: files on disk belong to host ids
/// (the caller's own, its subordinate ranges), and a layer must record the ids they have inside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdMapping {
    /// uid ranges.
    pub uids: Vec<IdRange>,
    /// gid ranges.
    pub gids: Vec<IdRange>,
}

impl IdMapping {
    /// The id inside for host id `host`; unmapped ids become the overflow id 65534 (`nobody`),
    /// as the kernel shows them.
    fn inside(ranges: &[IdRange], host: u32) -> u32 {
        ranges
            .iter()
            .find(|r| host >= r.host && u64::from(host) < u64::from(r.host) + u64::from(r.size))
            .map_or(65534, |r| r.container + (host - r.host))
    }

    /// (uid, gid) inside for a file owned by `uid`:`gid` on disk.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (Self::inside(&self.uids, uid), Self::inside(&self.gids, gid))
    }
}

impl<W: Write> TarWriter<W> {
    /// A writer with no mtime clamping.
    pub fn new(out: W) -> Self {
        Self {
            out,
            links: HashMap::new(),
            clamp_mtime: None,
            buf: vec![0; 256 * 1024],
            ids: None,
        }
    }

    /// Records owners through `ids` (files of a rootless store or container) instead of as they
    /// are on disk.
    pub fn id_mapping(mut self, ids: Option<IdMapping>) -> Self {
        self.ids = ids;
        self
    }

    /// Clamps every mtime to at most `epoch` (reproducible builds).
    pub fn clamp_mtime(mut self, epoch: Option<u64>) -> Self {
        self.clamp_mtime = epoch;
        self
    }

    fn mtime(&self, m: i64) -> u64 {
        let m = m.max(0) as u64;
        self.clamp_mtime.map_or(m, |c| m.min(c))
    }

    /// Appends the object at `abs` under the archive path `rel` (no leading `/`; directories get
    /// a trailing `/`). Sockets are skipped. Files with several links become hard links to the
    /// first path written.
    pub fn append_path(&mut self, rel: &[u8], abs: &Path, m: &std::fs::Metadata) -> io::Result<()> {
        let ft = m.file_type();
        let mut h = ustar_header();
        h.set_mode(m.mode() & 0o7777);
        let (uid, gid) = match &self.ids {
            Some(ids) => ids.to_container(m.uid(), m.gid()),
            None => (m.uid(), m.gid()),
        };
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        h.set_mtime(self.mtime(m.mtime()));
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in crate::apply::list_xattrs(abs) {
            pax.push((format!("SCHILY.xattr.{}", name.to_string_lossy()), value));
        }
        let mut path = rel.to_vec();
        let mut link: Option<Vec<u8>> = None;
        let mut content: Option<File> = None;
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            if !path.ends_with(b"/") {
                path.push(b'/');
            }
            h.set_size(0);
        } else if ft.is_symlink() {
            h.set_entry_type(tar::EntryType::Symlink);
            let target = std::fs::read_link(abs)?;
            link = Some(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec());
            h.set_size(0);
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    link = Some(first.clone());
                    h.set_size(0);
                } else {
                    self.links.insert(key, path.clone());
                }
            }
            if link.is_none() {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(m.len());
                content = Some(File::open(abs)?);
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            let rdev = m.rdev();
            h.set_device_major(rustix::fs::major(rdev))?;
            h.set_device_minor(rustix::fs::minor(rdev))?;
            h.set_size(0);
        } else if ft.is_fifo() {
            h.set_entry_type(tar::EntryType::Fifo);
            h.set_size(0);
        } else {
            return Ok(());
        }
        self.write_header(h, &path, link.as_deref(), pax)?;
        if let Some(mut f) = content {
            self.copy_body(&mut f, m.len(), abs)?;
        }
        Ok(())
    }

    /// Appends an empty regular file (whiteouts: `.wh.NAME`, `.wh..wh..opq`).
    pub fn append_marker(&mut self, rel: &[u8], mtime: i64) -> io::Result<()> {
        let mut h = ustar_header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_mtime(self.mtime(mtime));
        self.write_header(h, rel, None, Vec::new())
    }

    /// Appends a regular file with the given bytes.
    pub fn append_bytes(
        &mut self,
        rel: &[u8],
        bytes: &[u8],
        mode: u32,
        mtime: u64,
    ) -> io::Result<()> {
        let mut h = ustar_header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(bytes.len() as u64);
        h.set_mtime(mtime);
        self.write_header(h, rel, None, Vec::new())?;
        self.out.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// Appends a directory entry.
    pub fn append_dir(&mut self, rel: &[u8], mode: u32, mtime: u64) -> io::Result<()> {
        let mut h = ustar_header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(mtime);
        let mut p = rel.to_vec();
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        self.write_header(h, &p, None, Vec::new())
    }

    /// Appends a regular file whose content is read from `f` (exactly `size` bytes).
    pub fn append_file(
        &mut self,
        rel: &[u8],
        f: &mut File,
        size: u64,
        mode: u32,
        mtime: u64,
    ) -> io::Result<()> {
        let mut h = ustar_header();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(mtime);
        self.write_header(h, rel, None, Vec::new())?;
        self.copy_body(f, size, Path::new("blob"))
    }

    /// Appends a symlink entry.
    pub fn append_symlink(&mut self, rel: &[u8], target: &[u8], mtime: u64) -> io::Result<()> {
        let mut h = ustar_header();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(mtime);
        self.write_header(h, rel, Some(target), Vec::new())
    }

    fn copy_body(&mut self, f: &mut File, size: u64, what: &Path) -> io::Result<()> {
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = f.read(&mut self.buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("`{}` shrank while being archived", what.display()),
                ));
            }
            self.out.write_all(&self.buf[..n])?;
            left -= n as u64;
        }
        self.pad(size)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn write_header(
        &mut self,
        mut h: tar::Header,
        path: &[u8],
        link: Option<&[u8]>,
        mut pax: Vec<(String, Vec<u8>)>,
    ) -> io::Result<()> {
        let path_os = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path);
        if path.len() > 100 || h.set_path(path_os).is_err() {
            pax.push(("path".to_string(), path.to_vec()));
            let short = &path[..path.len().min(99)];
            set_raw_name(&mut h, short);
        }
        if let Some(l) = link {
            if l.len() > 100
                || h.set_link_name(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(l))
                    .is_err()
            {
                pax.push(("linkpath".to_string(), l.to_vec()));
                let short = &l[..l.len().min(100)];
                h.as_old_mut().linkname[..short.len()].copy_from_slice(short);
            }
        }
        if !pax.is_empty() {
            pax.sort();
            let mut data = Vec::new();
            for (k, v) in &pax {
                let body_len = k.len() + v.len() + 3; // ' ' '=' '\n'
                let mut len = body_len + 1;
                loop {
                    let total = body_len + len.to_string().len();
                    if total == len {
                        break;
                    }
                    len = total;
                }
                data.extend_from_slice(len.to_string().as_bytes());
                data.push(b' ');
                data.extend_from_slice(k.as_bytes());
                data.push(b'=');
                data.extend_from_slice(v);
                data.push(b'\n');
            }
            let mut ph = ustar_header();
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_size(data.len() as u64);
            ph.set_mtime(0);
            set_raw_name(&mut ph, b"PaxHeader");
            ph.set_cksum();
            self.out.write_all(ph.as_bytes())?;
            self.out.write_all(&data)?;
            self.pad(data.len() as u64)?;
        }
        h.set_cksum();
        self.out.write_all(h.as_bytes())
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; BLOCK * 2])?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

fn set_raw_name(h: &mut tar::Header, name: &[u8]) {
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name);
}

/// A ustar header with its numeric owner fields filled (`tar::Header::new_ustar` leaves them
/// empty, which strict readers refuse).
fn ustar_header() -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_read_back_as_the_ids_inside() {
        let ids = IdMapping {
            uids: vec![
                IdRange {
                    container: 0,
                    host: 1000,
                    size: 1,
                },
                IdRange {
                    container: 1,
                    host: 100_000,
                    size: 65536,
                },
            ],
            gids: vec![IdRange {
                container: 0,
                host: 1000,
                size: 1,
            }],
        };
        assert_eq!(ids.to_container(1000, 1000), (0, 0));
        assert_eq!(ids.to_container(100_999, 1000), (1000, 0));
        assert_eq!(
            ids.to_container(0, 5),
            (65534, 65534),
            "unmapped: overflow id"
        );
        assert_eq!(ids.to_container(165_536, 1000), (65534, 0));
    }
}
