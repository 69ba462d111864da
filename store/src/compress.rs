//! Compression sniffing: a layer or archive may be plain tar, gzip or zstd, and we tell which by
//! its first bytes rather than by what anyone claims.

use std::io::{self, BufRead, Read};

pub use oci::media_type::Compression;

/// Tells the compression of a stream from its first bytes.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decompressor its first bytes call for.
pub fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    let head = r.fill_buf()?;
    Ok(match sniff(head) {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniffs_and_decompresses() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&b"hello"[..], 1).unwrap();
        for input in [gz, zs, b"hello".to_vec()] {
            let mut out = String::new();
            decompress(io::BufReader::new(&input[..]))
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, "hello");
        }
    }
}
