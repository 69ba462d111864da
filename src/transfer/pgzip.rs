//! Parallel gzip for large layers, pigz's scheme: the input is cut into fixed blocks, each
//! block is raw-deflated on a worker with the previous block's last 32 KiB as dictionary and
//! ends with a sync flush (the last with a finish), and the blocks are written in order between
//! one gzip header and one trailer whose CRC-32 combines the blocks' own. The result is a
//! single gzip member that any gunzip reads, compressing almost as well as one stream.
//!
//! The output depends only on the input and the level: block boundaries fall at fixed offsets
//! and a block's bytes depend on its data and dictionary alone, never on the number of workers
//! or on timing. (The `gzp` crate does the same, but it needs a C zlib for dictionaries and
//! compresses blocks independently without one.)

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::{Mutex, mpsc};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per block.
pub const BLOCK: usize = 1 << 20;
/// The deflate window: how much of the previous block primes the next.
const DICT: usize = 32 << 10;

/// One block to compress.
struct Job {
    index: u64,
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
}

/// A compressed block and the CRC-32 of its input.
type Done = (u64, io::Result<(Vec<u8>, Crc)>);

/// Compresses all of `input` into `out` as one gzip member at `level` (0-9), using `workers`
/// threads for deflate while this thread reads and writes.
pub fn compress<R: Read, W: Write>(
    mut input: R,
    mut out: W,
    level: u32,
    workers: usize,
) -> io::Result<()> {
    let level = Compression::new(level.min(9));
    let workers = workers.max(1);
    out.write_all(&header(level))?;
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers);
    let job_rx = Mutex::new(job_rx);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let job_rx = &job_rx;
            s.spawn(move || worker(job_rx, &done_tx, level));
        }
        drop(done_tx);
        // Reading, ordering and writing happen here; dropping `job_tx` on any return ends the
        // workers, whose results nobody waits for then.
        let job_tx = job_tx;
        let mut crc = Crc::new();
        let mut pending = BTreeMap::new();
        let (mut sent, mut written) = (0u64, 0u64);
        let mut drain = |until: u64, out: &mut W, crc: &mut Crc| -> io::Result<u64> {
            while written < until {
                let (data, block_crc) = match pending.remove(&written) {
                    Some(r) => r,
                    None => {
                        let (i, r) = done_rx
                            .recv()
                            .map_err(|_| io::Error::other("a compression worker stopped"))?;
                        pending.insert(i, r?);
                        continue;
                    }
                };
                out.write_all(&data)?;
                crc.combine(&block_crc);
                written += 1;
            }
            Ok(written)
        };
        let mut cur = read_block(&mut input)?;
        let mut dict = Vec::new();
        loop {
            let next = if cur.len() == BLOCK {
                read_block(&mut input)?
            } else {
                Vec::new()
            };
            let last = next.is_empty();
            let tail = cur[cur.len().saturating_sub(DICT)..].to_vec();
            let job = Job {
                index: sent,
                data: cur,
                dict: std::mem::replace(&mut dict, tail),
                last,
            };
            job_tx
                .send(job)
                .map_err(|_| io::Error::other("the compression workers stopped"))?;
            sent += 1;
            // Keep at most about two blocks per worker in flight.
            drain(sent.saturating_sub(2 * workers as u64), &mut out, &mut crc)?;
            if last {
                break;
            }
            cur = next;
        }
        drop(job_tx);
        drain(sent, &mut out, &mut crc)?;
        out.write_all(&crc.sum().to_le_bytes())?;
        out.write_all(&crc.amount().to_le_bytes())?;
        out.flush()
    })
}

fn worker(jobs: &Mutex<mpsc::Receiver<Job>>, done: &mpsc::Sender<Done>, level: Compression) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let r = deflate_block(level, &job).map(|data| {
            let mut crc = Crc::new();
            crc.update(&job.data);
            (data, crc)
        });
        if done.send((job.index, r)).is_err() {
            return;
        }
    }
}

/// Raw deflate of one block, primed with its dictionary, ending on a byte boundary (sync flush)
/// or with the final block. A fresh compressor each time: one reset after an earlier block
/// still has that block's bytes in its window, and they sway the choice of matches.
fn deflate_block(level: Compression, job: &Job) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(level, false);
    if !job.dict.is_empty() {
        c.set_dictionary(&job.dict).map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let input = &job.data[..];
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 1024);
    loop {
        let used = c.total_in() as usize;
        let status = c
            .compress_vec(&input[used..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = c.total_in() as usize == input.len();
        // Output room left over means the flush went through.
        let flushed = out.len() < out.capacity();
        if all_in && (status == Status::StreamEnd || (!job.last && flushed)) {
            return Ok(out);
        }
        out.reserve(out.capacity().max(64 << 10));
    }
}

/// Reads up to `BLOCK` bytes; fewer only at the end of the input.
fn read_block<R: Read>(input: &mut R) -> io::Result<Vec<u8>> {
    let mut block = Vec::with_capacity(BLOCK);
    input.take(BLOCK as u64).read_to_end(&mut block)?;
    Ok(block)
}

/// The gzip header flate2's `GzEncoder` writes: no name, no time, unknown OS.
fn header(level: Compression) -> [u8; 10] {
    let xfl = if level.level() >= Compression::best().level() {
        2
    } else if level.level() <= Compression::fast().level() {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible but not trivial: words from a small pseudo-random vocabulary.
    fn text(len: usize) -> Vec<u8> {
        let words: Vec<Vec<u8>> = (0..500u32)
            .map(|i| format!("w{}x{} ", i.wrapping_mul(2654435761) % 99991, i).into_bytes())
            .collect();
        let mut out = Vec::with_capacity(len + 32);
        let mut x = 88172645463325252u64;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(&words[(x % 500) as usize]);
        }
        out.truncate(len);
        out
    }

    fn pgzip(input: &[u8], workers: usize) -> Vec<u8> {
        let mut out = Vec::new();
        compress(input, &mut out, 6, workers).expect("compress into memory");
        out
    }

    #[test]
    fn one_member_that_round_trips_and_is_deterministic() {
        let sizes = [
            0,
            1,
            DICT - 1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK - 1,
            2 * BLOCK,
            2 * BLOCK + DICT + 1,
        ];
        let data = text(2 * BLOCK + DICT + 1);
        for size in sizes {
            let input = &data[..size];
            let gz = pgzip(input, 3);
            assert_eq!(gz, pgzip(input, 3), "two runs differ at {size} bytes");

            // A single member: GzDecoder stops after the first and must consume every byte.
            let mut one = flate2::bufread::GzDecoder::new(&gz[..]);
            let mut back = Vec::new();
            one.read_to_end(&mut back).expect("gunzip");
            assert!(back == input, "GzDecoder output differs at {size} bytes");
            assert!(one.into_inner().is_empty(), "trailing bytes at {size}");

            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .expect("gunzip");
            assert!(
                back == input,
                "MultiGzDecoder output differs at {size} bytes"
            );
        }
    }

    #[test]
    fn same_bytes_whatever_the_workers() {
        // Noise over four symbols: the input on which a reused compressor chose other matches.
        let mut x = 1u64;
        let input: Vec<u8> = (0..4 * BLOCK + 1234)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8 % 4
            })
            .collect();
        let gz = pgzip(&input, 1);
        for workers in [2, 4] {
            assert!(
                gz == pgzip(&input, workers),
                "{workers} workers change the output"
            );
        }
    }

    #[test]
    fn blocks_see_the_previous_blocks_tail() {
        // A block of noise, then a block repeating its last 30 KiB: cheap only when the second
        // block is primed with the first one's tail (about 40 KiB more without).
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut input: Vec<u8> = (0..BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let tail = input[BLOCK - (30 << 10)..].to_vec();
        input.extend(tail.iter().cycle().take(BLOCK));
        let gz = pgzip(&input, 2);
        assert!(
            gz.len() < BLOCK + (16 << 10),
            "{} bytes: the second block was compressed without a dictionary",
            gz.len()
        );
    }
}
