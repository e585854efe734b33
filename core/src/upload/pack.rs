//! A file as a blob: its digest (read once, streamed), and the object stored for it: the file's
//! bytes, then its brotli and its gzip variant, each only when it saves at least a tenth of
//! the bytes. The manifest says where each part starts.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::layout::Encoding;
use crate::wire::BlobLayout;

/// Files smaller than this gain nothing from compression; larger ones than the maximum are
/// stored as they are (compressing them would hold an upload for long).
const MIN_COMPRESS: u64 = 256;
const MAX_COMPRESS: u64 = 16 * 1024 * 1024;
/// High enough to matter, low enough for large bundles to compress in a build's time.
const BROTLI_QUALITY: i32 = 5;
/// The brotli window, as a power of two: large enough for a whole file up to 4 MB, and never
/// below 2^17, under which the encoder at this quality is many times slower.
const BROTLI_WINDOW: std::ops::RangeInclusive<i32> = 17..=22;

/// Files at most this large, when sent straight to storage, go into packs.
pub const PACKABLE: u64 = 256 * 1024;
/// A pack holds files of at most this many bytes in all, or this many files.
pub const PACK_BYTES: u64 = 2 * 1024 * 1024;
pub const PACK_FILES: usize = 256;
/// Fewer small files than this are not packed: each goes through the API in one request,
/// where a pack costs three.
pub const FEWEST_PACKED: usize = 8;

/// Files up to this size are read once and sent from memory; larger ones without variants are
/// streamed from disk.
pub const IN_MEMORY: u64 = 1024 * 1024;

/// Whether a file of `content_type` and `size` is worth trying to compress.
pub fn compressible(content_type: &str, size: u64) -> bool {
    crate::content_type::is_compressible(content_type)
        && (MIN_COMPRESS..=MAX_COMPRESS).contains(&size)
}

/// Bytes a file's packing holds in memory: what is read whole, and its compressed copies.
pub fn held_bytes(size: u64, compress: bool) -> u64 {
    if compress {
        size * 2
    } else if size <= IN_MEMORY {
        size
    } else {
        0
    }
}

/// The hex SHA-256 of a file, read in chunks.
pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// What is stored for a file.
#[derive(Debug)]
pub struct Packed {
    pub sha256: String,
    /// The file's bytes, when read into memory; else they are streamed from `source`.
    pub bytes: Option<Bytes>,
    pub source: PathBuf,
    /// Its compressed copies, each worth storing, brotli first.
    pub variants: Vec<(Encoding, Bytes)>,
    pub layout: BlobLayout,
}

/// The body of a blob.
#[derive(Debug, Clone)]
pub enum BlobBody {
    Bytes(Bytes),
    /// A file on disk, sent as it is (it has no variants), which held `size` bytes with the
    /// digest `sha256` when it was hashed.
    File {
        path: PathBuf,
        sha256: String,
        size: u64,
    },
}

impl Packed {
    /// The object stored for the file: its bytes, then its variants.
    pub fn body(&self) -> BlobBody {
        match &self.bytes {
            None => BlobBody::File {
                path: self.source.clone(),
                sha256: self.sha256.clone(),
                size: self.layout.size,
            },
            Some(bytes) if self.variants.is_empty() => BlobBody::Bytes(bytes.clone()),
            Some(bytes) => {
                let total = usize::try_from(self.layout.total().unwrap_or(0)).unwrap_or(0);
                let mut all = Vec::with_capacity(total);
                all.extend_from_slice(bytes);
                for (_, variant) in &self.variants {
                    all.extend_from_slice(variant);
                }
                BlobBody::Bytes(all.into())
            }
        }
    }
}

/// Reads a file once: its SHA-256, its br and gzip variants when `compress` and they save at
/// least a tenth of the bytes, and the bytes when small enough or compressed. A file that no
/// longer has the digest `expect` (changed since it was hashed) is an error.
pub fn pack(path: &Path, compress: bool, expect: Option<&str>) -> std::io::Result<Packed> {
    let size = std::fs::metadata(path)?.len();
    if !compress && size > IN_MEMORY {
        let sha256 = sha256_of(path)?;
        check_digest(path, &sha256, expect)?;
        return Ok(Packed {
            sha256,
            bytes: None,
            source: path.to_path_buf(),
            variants: Vec::new(),
            layout: BlobLayout {
                size,
                br: None,
                gzip: None,
            },
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    check_digest(path, &sha256, expect)?;
    let mut variants = Vec::new();
    let mut layout = BlobLayout {
        size: bytes.len() as u64,
        br: None,
        gzip: None,
    };
    if compress && worth_compressing(&bytes) {
        for encoding in Encoding::ALL {
            let packed = compressed(&bytes, encoding)?;
            if packed.len() * 10 <= bytes.len() * 9 {
                let len = Some(packed.len() as u64);
                match encoding {
                    Encoding::Brotli => layout.br = len,
                    Encoding::Gzip => layout.gzip = len,
                }
                variants.push((encoding, Bytes::from(packed)));
            }
        }
    }
    Ok(Packed {
        sha256,
        bytes: Some(bytes.into()),
        source: path.to_path_buf(),
        variants,
        layout,
    })
}

fn check_digest(path: &Path, sha256: &str, expect: Option<&str>) -> std::io::Result<()> {
    match expect {
        Some(expect) if expect != sha256 => Err(std::io::Error::other(format!(
            "{} changed while it was being uploaded",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// A quick look at the start of a file: data that does not shrink there (already compressed,
/// random) is not worth the time the real compressors would take.
fn worth_compressing(bytes: &[u8]) -> bool {
    use std::io::Write;
    let sample = &bytes[..bytes.len().min(8 * 1024)];
    let mut out = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    if out.write_all(sample).is_err() {
        return false;
    }
    out.finish()
        .is_ok_and(|packed| packed.len() * 10 <= sample.len() * 9)
}

fn compressed(bytes: &[u8], encoding: Encoding) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match encoding {
        Encoding::Gzip => {
            let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            out.write_all(bytes)?;
            out.finish()
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                lgwin: brotli_window(bytes.len()),
                ..Default::default()
            };
            brotli::BrotliCompress(&mut std::io::Cursor::new(bytes), &mut out, &params)?;
            Ok(out)
        }
    }
}

/// The window for a file of `len` bytes: the smallest that holds it whole (a brotli window of
/// 2^w holds 2^w - 16 bytes), within [`BROTLI_WINDOW`]. A larger one would compress it no
/// better and cost the time to set up its tables, more than the compression itself for a
/// small file.
fn brotli_window(len: usize) -> i32 {
    let (least, most) = (*BROTLI_WINDOW.start(), *BROTLI_WINDOW.end());
    (least..most).find(|w| len + 16 <= 1 << w).unwrap_or(most)
}

/// Whether `blob` holds a file with the digest `sha256` followed by variants as `layout` says,
/// each of which decompresses to the file: what the server checks of a blob sent through it.
pub fn verify(blob: &[u8], sha256: &str, layout: BlobLayout) -> Result<(), String> {
    verify_reader(
        &mut std::io::Cursor::new(blob),
        blob.len() as u64,
        sha256,
        layout,
    )
}

/// [`verify`] of a blob in a file, read as a stream.
pub fn verify_file(path: &Path, sha256: &str, layout: BlobLayout) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    verify_reader(&mut file, len, sha256, layout)
}

fn verify_reader<R: Read + std::io::Seek>(
    blob: &mut R,
    len: u64,
    sha256: &str,
    layout: BlobLayout,
) -> Result<(), String> {
    use std::io::SeekFrom;
    if Some(len) != layout.total() {
        return Err(format!(
            "the body has {len} bytes; its layout says {}",
            layout.total().unwrap_or(u64::MAX)
        ));
    }
    let digest = |reader: &mut dyn Read| -> std::io::Result<(String, u64)> {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok((hex::encode(hasher.finalize()), total));
            }
            total += n as u64;
            hasher.update(&buf[..n]);
        }
    };
    blob.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let (file, _) = digest(&mut blob.by_ref().take(layout.size)).map_err(|e| e.to_string())?;
    if file != sha256 {
        return Err("the file's bytes do not have the digest they are sent under".into());
    }
    let mut at = layout.size;
    for (encoding, part) in [(Encoding::Brotli, layout.br), (Encoding::Gzip, layout.gzip)] {
        let Some(part) = part else { continue };
        blob.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        at += part;
        let mut variant = blob.by_ref().take(part);
        // Never more than the file's size plus one is read out of a variant.
        let decoded = match encoding {
            // The stream, and nothing after it: once it ended, the decoder holds no input it
            // did not use (it says so when read again), and none of the part is left unread.
            Encoding::Brotli => {
                let mut decoder = brotli::Decompressor::new(&mut variant, 4096);
                let decoded = digest(&mut (&mut decoder).take(layout.size + 1));
                let after = decoder.read(&mut [0u8; 1]);
                drop(decoder);
                match after {
                    Ok(0) if variant.limit() == 0 => decoded,
                    _ => Err(std::io::Error::other("bytes after the stream")),
                }
            }
            // Every member: bytes after the first are decoded too (or refused), never served
            // unchecked.
            Encoding::Gzip => {
                digest(&mut flate2::read::MultiGzDecoder::new(variant).take(layout.size + 1))
            }
        };
        match decoded {
            Ok((sha, n)) if sha == sha256 && n == layout.size => {}
            _ => {
                return Err(format!(
                    "its {} variant does not decompress to the file",
                    encoding.token()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(packed: &Packed) -> Vec<u8> {
        match packed.body() {
            BlobBody::Bytes(b) => b.to_vec(),
            BlobBody::File { path, .. } => std::fs::read(path).expect("read"),
        }
    }

    #[test]
    fn the_brotli_window_holds_the_file_within_its_bounds() {
        // (file bytes, window)
        let table = [
            (0, 17),
            (300, 17),
            ((1 << 17) - 16, 17),
            ((1 << 17) - 15, 18),
            (1 << 20, 21),
            ((1 << 22) - 16, 22),
            (1 << 22, 22),
            (16 << 20, 22),
        ];
        for (len, window) in table {
            assert_eq!(brotli_window(len), window, "{len} bytes");
        }
    }

    #[test]
    fn compresses_text_and_leaves_noise_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("app.js");
        let body = "export const greeting = 'hello';\n".repeat(300);
        std::fs::write(&text, &body).expect("write");
        let packed = pack(&text, true, None).expect("compress");
        assert_eq!(packed.sha256, hex::encode(Sha256::digest(body.as_bytes())));
        assert_eq!(packed.sha256, sha256_of(&text).expect("hash"));
        let kinds: Vec<Encoding> = packed.variants.iter().map(|(e, _)| *e).collect();
        assert_eq!(kinds, [Encoding::Brotli, Encoding::Gzip]);
        let blob = unpack(&packed);
        assert_eq!(Some(blob.len() as u64), packed.layout.total());
        assert_eq!(&blob[..body.len()], body.as_bytes());
        verify(&blob, &packed.sha256, packed.layout).expect("a packed blob verifies");

        let noise = dir.path().join("noise.html");
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes: Vec<u8> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        std::fs::write(&noise, &bytes).expect("write");
        let packed = pack(&noise, true, None).expect("compress");
        assert!(
            packed.variants.is_empty(),
            "incompressible bytes are stored once"
        );
        assert_eq!(unpack(&packed), bytes);
        assert!(
            pack(&noise, true, Some(&"0".repeat(64))).is_err(),
            "a changed file is refused"
        );
    }

    #[test]
    fn blobs_that_lie_about_themselves_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("a.css");
        std::fs::write(&text, "body { color: red; }\n".repeat(200)).expect("write");
        let packed = pack(&text, true, None).expect("pack");
        let good = unpack(&packed);
        let (sha, layout) = (packed.sha256.as_str(), packed.layout);
        assert!(verify(&good, sha, layout).is_ok());
        let mut flipped = good.clone();
        flipped[3] ^= 1;
        let mut bad_variant = good.clone();
        let last = bad_variant.len() - 5;
        bad_variant[last] ^= 0xff;
        let other = "a".repeat(64);
        let cases: Vec<(&str, Vec<u8>, &str, BlobLayout)> = vec![
            ("file bytes changed", flipped, sha, layout),
            ("a variant changed", bad_variant, sha, layout),
            ("another digest", good.clone(), &other, layout),
            ("too short", good[..good.len() - 1].to_vec(), sha, layout),
            (
                "layout past the body",
                good.clone(),
                sha,
                BlobLayout {
                    size: u64::MAX,
                    ..layout
                },
            ),
            (
                "variants swapped",
                good.clone(),
                sha,
                BlobLayout {
                    br: layout.gzip,
                    gzip: layout.br,
                    ..layout
                },
            ),
        ];
        for (case, blob, sha, layout) in cases {
            assert!(verify(&blob, sha, layout).is_err(), "{case}");
        }

        // A variant that decompresses to the file, then holds more: another stream, or bytes.
        let raw = packed.bytes.clone().expect("in memory");
        let variant = |encoding: Encoding| -> Vec<u8> {
            let found = packed.variants.iter().find(|(e, _)| *e == encoding);
            found.expect("variant").1.to_vec()
        };
        let (br, gzip) = (variant(Encoding::Brotli), variant(Encoding::Gzip));
        let more = compressed(b"<script>alert(1)</script>", Encoding::Gzip).expect("gzip");
        let more_br = compressed(b"<script>alert(1)</script>", Encoding::Brotli).expect("br");
        let blob = |br: &[u8], gzip: &[u8]| {
            let layout = BlobLayout {
                size: raw.len() as u64,
                br: Some(br.len() as u64),
                gzip: Some(gzip.len() as u64),
            };
            ([&raw[..], br, gzip].concat(), layout)
        };
        let (honest, layout) = blob(&br, &gzip);
        assert!(verify(&honest, sha, layout).is_ok());
        let longer: [(&str, Vec<u8>, Vec<u8>); 4] = [
            (
                "a second gzip member",
                br.clone(),
                [&gzip[..], &more].concat(),
            ),
            (
                "bytes after the gzip stream",
                br.clone(),
                [&gzip[..], b"xyz"].concat(),
            ),
            (
                "a second brotli stream",
                [&br[..], &more_br].concat(),
                gzip.clone(),
            ),
            (
                "bytes after the brotli stream",
                [&br[..], b"xyz"].concat(),
                gzip.clone(),
            ),
        ];
        for (case, br, gzip) in longer {
            let (body, layout) = blob(&br, &gzip);
            assert!(verify(&body, sha, layout).is_err(), "{case}");
        }
    }
}
