//! Validated content digests (`sha256:<64 lowercase hex>`) and a hashing writer.

use std::fmt;
use std::io;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated sha256 content digest, e.g. `sha256:e3b0c442...`.
///
/// Only sha256 is accepted: it is the only algorithm docker and the registries we target use
/// for content they address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The 64 lowercase hex characters.
    hex: String,
}

/// Why a string is not a digest.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("invalid digest `{0}`: expected `sha256:<64 hex characters>`")]
    Format(String),
    /// An algorithm other than sha256.
    #[error("unsupported digest algorithm in `{0}`: only sha256 is supported")]
    Algorithm(String),
    /// Wrong length or non-hex characters in the encoded part.
    #[error("invalid digest `{0}`: sha256 needs 64 lowercase hex characters")]
    Encoding(String),
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((alg, enc)) = s.split_once(':') else {
            return Err(DigestError::Format(s.to_string()));
        };
        if alg != "sha256" {
            let valid_alg = !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if valid_alg {
                DigestError::Algorithm(s.to_string())
            } else {
                DigestError::Format(s.to_string())
            });
        }
        Self::from_hex(enc).map_err(|_| DigestError::Encoding(s.to_string()))
    }

    /// Builds a digest from the 64 lowercase hex characters alone.
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self {
                hex: hex.to_string(),
            })
        } else {
            Err(DigestError::Encoding(format!("sha256:{hex}")))
        }
    }

    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_raw(Sha256::digest(bytes).into())
    }

    /// Builds a digest from a raw 32-byte hash.
    pub fn from_raw(raw: [u8; 32]) -> Self {
        Self {
            hex: hex::encode(raw),
        }
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The hex-encoded part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as docker shows image IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A writer adapter that hashes and counts everything written through it.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W> Sha256Writer<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of what was written, the byte count, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (
            Digest::from_raw(self.hasher.finalize().into()),
            self.len,
            self.inner,
        )
    }

    /// Mutable access to the wrapped writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: io::Write> io::Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::Encoding(_))
        ));
        assert!(matches!(
            Digest::parse("sha512:abc"),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            Digest::parse("nocolon"),
            Err(DigestError::Format(_))
        ));
        let upper = d.to_string().to_uppercase().replace("SHA256", "sha256");
        assert!(Digest::parse(&upper).is_err());
    }

    #[test]
    fn writer_hashes() {
        use std::io::Write;
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"hello").unwrap();
        let (d, n, v) = w.finish();
        assert_eq!(n, 5);
        assert_eq!(v, b"hello");
        assert_eq!(d, Digest::of(b"hello"));
    }
}
