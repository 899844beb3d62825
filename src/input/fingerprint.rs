//! What the plan read of the input, and the proof that a later pass reads the same bytes.
//!
//! The first pass of `scan` takes the file's [`Fingerprint`]: its size, its SHA-256 and one
//! digest per 64 KiB block. Every later pass (duplicates, `--resume`, the sending pass) reads
//! through a [`Verifier`], which hands the csv parser a block only after its digest matched,
//! never reads past the planned size, and fails when the file holds more. So a row that was
//! not in the plan, or differs from it, is never parsed, let alone sent: appending to the file
//! or editing it while a run waits for its go-ahead or sends is an error, not extra deletions.
//! The block digests cost 16 bytes per 64 KiB of input (16 KiB for a 64 MiB file).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The unit of verification: a block is checked before any of its bytes reach the parser.
pub(crate) const BLOCK_BYTES: usize = 64 * 1024;

/// A block digest: the first 128 bits of the block's SHA-256.
type BlockDigest = [u8; 16];

/// The bytes a pass read: size, SHA-256 and per-block digests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    size: u64,
    sha256: [u8; 32],
    blocks: Vec<BlockDigest>,
}

impl Fingerprint {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The SHA-256 of the whole file, lowercase hex.
    pub(crate) fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xF)]));
    }
    out
}

fn block_digest(block: &[u8]) -> BlockDigest {
    let full = Sha256::digest(block);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The input changed after the plan read it; the message says how.
#[derive(Debug)]
pub(crate) struct Changed(pub(crate) String);

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Changed {}

fn changed(why: String) -> io::Error {
    io::Error::other(Changed(why))
}

/// How a pass reads the file.
pub(crate) enum Source {
    /// As it is: the header when opening, passes without a plan (seed files).
    Plain(File),
    /// The plan's first pass: takes the fingerprint of everything it reads.
    Record(Box<Recorder>),
    /// Every pass after the plan: only the planned bytes, each block checked before use.
    Verify(Box<Verifier>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(f) => f.read(buf),
            Source::Record(r) => r.read(buf),
            Source::Verify(v) => v.read(buf),
        }
    }
}

/// Hashes what passes through it.
pub(crate) struct Recorder {
    inner: File,
    whole: Sha256,
    block: Sha256,
    in_block: usize,
    blocks: Vec<BlockDigest>,
    size: u64,
}

impl Recorder {
    pub(crate) fn new(inner: File) -> Recorder {
        Recorder {
            inner,
            whole: Sha256::new(),
            block: Sha256::new(),
            in_block: 0,
            blocks: Vec::new(),
            size: 0,
        }
    }

    fn absorb(&mut self, mut bytes: &[u8]) {
        self.whole.update(bytes);
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (BLOCK_BYTES - self.in_block).min(bytes.len());
            self.block.update(&bytes[..take]);
            self.in_block += take;
            if self.in_block == BLOCK_BYTES {
                self.end_block();
            }
            bytes = &bytes[take..];
        }
    }

    fn end_block(&mut self) {
        let full = std::mem::take(&mut self.block).finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        self.blocks.push(out);
        self.in_block = 0;
    }

    /// Reads whatever the parser left (nothing, normally) and returns the fingerprint of the
    /// whole file.
    pub(crate) fn finish(mut self) -> io::Result<Fingerprint> {
        let mut rest = vec![0u8; BLOCK_BYTES];
        loop {
            match self.inner.read(&mut rest) {
                Ok(0) => break,
                Ok(n) => self.absorb(&rest[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.in_block > 0 {
            self.end_block();
        }
        Ok(Fingerprint {
            size: self.size,
            sha256: self.whole.finalize().into(),
            blocks: self.blocks,
        })
    }
}

impl Read for Recorder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.absorb(&buf[..n]);
        Ok(n)
    }
}

/// Hands out the planned bytes only, a verified block at a time.
pub(crate) struct Verifier {
    inner: File,
    expect: Fingerprint,
    buf: Vec<u8>,
    at: usize,
    /// Bytes verified so far (the offset of the next block).
    offset: u64,
    /// Set once the planned end was reached and nothing followed it.
    ended: bool,
}

impl Verifier {
    pub(crate) fn new(inner: File, expect: Fingerprint) -> Verifier {
        Verifier {
            inner,
            expect,
            buf: Vec::new(),
            at: 0,
            offset: 0,
            ended: false,
        }
    }

    /// Loads and checks the next block; leaves `buf` empty at the planned end.
    fn refill(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.at = 0;
        if self.ended {
            return Ok(());
        }
        let left = self.expect.size - self.offset;
        if left == 0 {
            // The planned end: one more byte means the file grew.
            let mut probe = [0u8; 1];
            if read_full(&mut self.inner, &mut probe)? > 0 {
                return Err(changed(format!(
                    "it is longer now than the {} bytes the plan read, as if rows were added",
                    self.expect.size
                )));
            }
            self.ended = true;
            return Ok(());
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(BLOCK_BYTES);
        self.buf.resize(want, 0);
        let got = read_full(&mut self.inner, &mut self.buf)?;
        if got < want {
            return Err(changed(format!(
                "it ends after {} bytes now, the plan read {}",
                self.offset + got as u64,
                self.expect.size
            )));
        }
        let index = usize::try_from(self.offset / BLOCK_BYTES as u64).unwrap_or(usize::MAX);
        if self.expect.blocks.get(index) != Some(&block_digest(&self.buf)) {
            return Err(changed(format!(
                "its bytes {}–{} are not the ones the plan read",
                self.offset,
                self.offset + want as u64 - 1
            )));
        }
        self.offset += want as u64;
        Ok(())
    }
}

impl Read for Verifier {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            self.refill()?;
        }
        let n = (self.buf.len() - self.at).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads until `buf` is full or the end of the file; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The fingerprint of a whole file, read afresh.
pub(crate) fn of_file(file: File) -> io::Result<Fingerprint> {
    Recorder::new(file).finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn temp(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(bytes).expect("write");
        f
    }

    fn reopen(f: &tempfile::NamedTempFile) -> File {
        File::open(f.path()).expect("reopen")
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn sha256_matches_the_known_digest() {
        let f = temp(b"abc");
        let fp = of_file(reopen(&f)).expect("reads");
        assert_eq!(
            fp.sha256_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(fp.size(), 3);
        let empty = of_file(reopen(&temp(b""))).expect("reads");
        assert_eq!(
            empty.sha256_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn recording_in_small_reads_is_reading_at_once() {
        let data = bytes(3 * BLOCK_BYTES + 17);
        let f = temp(&data);
        let whole = of_file(reopen(&f)).expect("reads");
        let mut r = Recorder::new(reopen(&f));
        let mut chunk = [0u8; 1000];
        while r.read(&mut chunk).expect("reads") > 0 {}
        assert_eq!(r.finish().expect("finishes"), whole);
        assert_eq!(whole.blocks.len(), 4);
    }

    fn verify_all(f: &tempfile::NamedTempFile, fp: &Fingerprint) -> io::Result<Vec<u8>> {
        let mut v = Verifier::new(reopen(f), fp.clone());
        let mut out = Vec::new();
        v.read_to_end(&mut out)?;
        Ok(out)
    }

    fn changed_message(e: io::Error) -> String {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<Changed>())
            .map(|c| c.0.clone())
            .unwrap_or_else(|| panic!("not a change: {e}"))
    }

    #[test]
    fn the_same_bytes_pass_and_any_change_is_caught() {
        for n in [0, 5, BLOCK_BYTES, 2 * BLOCK_BYTES + 9] {
            let data = bytes(n);
            let f = temp(&data);
            let fp = of_file(reopen(&f)).expect("reads");
            assert_eq!(verify_all(&f, &fp).expect("same"), data);

            // Appended.
            let mut grown = temp(&data);
            grown.write_all(b"x\n").expect("append");
            let err = verify_all(&grown, &fp).expect_err("grew");
            assert!(changed_message(err).contains("longer now"), "{n}");

            if n == 0 {
                continue;
            }
            // Cut short.
            let short = temp(&data[..n - 1]);
            let err = verify_all(&short, &fp).expect_err("shrank");
            assert!(changed_message(err).contains("ends after"), "{n}");

            // One byte changed, last block.
            let mut edited = data.clone();
            edited[n - 1] ^= 1;
            let err = verify_all(&temp(&edited), &fp).expect_err("edited");
            assert!(changed_message(err).contains("are not the ones"), "{n}");
        }
    }

    #[test]
    fn a_changed_block_is_refused_before_any_of_its_bytes_are_handed_out() {
        let data = bytes(3 * BLOCK_BYTES);
        let f = temp(&data);
        let fp = of_file(reopen(&f)).expect("reads");
        let mut edited = temp(&data);
        edited
            .seek(SeekFrom::Start(BLOCK_BYTES as u64 + 10))
            .expect("seek");
        edited.write_all(b"!").expect("edit");
        let mut v = Verifier::new(reopen(&edited), fp);
        let mut out = vec![0u8; BLOCK_BYTES];
        assert_eq!(
            read_full(&mut v, &mut out).expect("first block"),
            BLOCK_BYTES
        );
        assert_eq!(out, data[..BLOCK_BYTES]);
        let err = v.read(&mut out).expect_err("second block");
        assert!(changed_message(err).contains("65536–131071"));
    }
}
