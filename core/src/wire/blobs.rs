//! The digest handshake: whoever uploads a deployment's files (the builder, or the CLI for a
//! prebuilt folder) sends the digest of every file at once; the server answers which blobs the
//! project holds already (with where their variants are) and which to send, each with a URL
//! straight to storage where storage has them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::layout::InPack;

/// Most files in one deployment, and in one handshake.
pub const MAX_FILES: usize = 50_000;

/// `POST /api/v1/deployments/{id}/blobs`: every file's digest and size, once each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobCheck {
    pub blobs: Vec<BlobWant>,
    /// Answer only which blobs are missing, not where the present ones' variants are: a
    /// prebuilt upload names blobs by digest alone in its manifest, and the server completes
    /// it from what it recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub missing_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobWant {
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size: u64,
}

/// The answer: every digest asked about is either present or missing (present unless
/// missing, when only those were asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobCheckAnswer {
    /// Blobs the project holds: the sizes of the variants stored after the file's bytes.
    #[serde(default)]
    pub present: BTreeMap<String, BlobParts>,
    /// Blobs to send, with a URL straight to storage when there is one (else `PUT
    /// /api/v1/deployments/{id}/blobs/{sha256}`).
    pub missing: Vec<MissingBlob>,
}

/// The variants after a file's bytes in its blob (brotli first, then gzip), and the pack the
/// blob is in, if it is in one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobParts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<InPack>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingBlob {
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<PresignedPut>,
}

/// An upload straight to storage: `PUT` the body to `url` with exactly these headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignedPut {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// The query of `PUT /api/v1/deployments/{id}/blobs/{sha256}`: how the body is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobLayout {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<u64>,
}

impl BlobLayout {
    /// A file's bytes alone, with no variants.
    pub fn plain(size: u64) -> Self {
        Self {
            size,
            br: None,
            gzip: None,
        }
    }

    pub fn total(&self) -> Option<u64> {
        self.size
            .checked_add(self.br.unwrap_or(0))?
            .checked_add(self.gzip.unwrap_or(0))
    }
}

/// `POST /api/v1/deployments/{id}/blobs/stored`: blobs sent straight to storage, so an upload
/// cut off is resumed without sending them again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobsStored {
    pub blobs: Vec<StoredBlob>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<u64>,
    /// The pack it was stored in, if it went in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<InPack>,
}

/// `POST /api/v1/deployments/{id}/packs`: packs of small blobs about to be sent straight to
/// storage, each named by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackRequest {
    pub packs: Vec<BlobWant>,
}

/// A presigned `PUT` for each pack asked for, in the same order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackUploads {
    pub uploads: Vec<PresignedPut>,
}

impl StoredBlob {
    pub fn layout(&self) -> BlobLayout {
        BlobLayout {
            size: self.size,
            br: self.br,
            gzip: self.gzip,
        }
    }
}

/// `POST /api/v1/projects/{name}/prebuilt`: starts a deployment of a folder as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartPrebuilt {
    /// Go live when ready (the default), or stay a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote: Option<bool>,
    /// The handshake, in the same request: answered in `PrebuiltStarted::check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blobs: Option<BlobCheck>,
    /// The whole manifest instead of a handshake (its blobs named by digest alone; its
    /// `deployment` is the one this starts, whatever it says): when the project holds every
    /// blob it names once `inline` is stored, the deployment ends in this request
    /// (`PrebuiltStarted::complete`); else `check` says what is still missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<crate::layout::Manifest>,
    /// A few small blobs sent with the manifest: those that may be new to the project (the
    /// uploader's files whose content changed since it last uploaded them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<InlineBlob>,
}

/// Most blobs, and most bytes (their variants included), sent with a manifest.
pub const INLINE_MAX_BLOBS: usize = 16;
pub const INLINE_MAX_BYTES: u64 = 1024 * 1024;

/// A blob in a start's body: its layout and its bytes (the file's, then its variants), in
/// base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineBlob {
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub br: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<u64>,
    pub body: String,
}

impl InlineBlob {
    pub fn new(sha256: &str, layout: BlobLayout, bytes: &[u8]) -> Self {
        use base64::Engine;
        Self {
            sha256: sha256.to_owned(),
            size: layout.size,
            br: layout.br,
            gzip: layout.gzip,
            body: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    pub fn layout(&self) -> BlobLayout {
        BlobLayout {
            size: self.size,
            br: self.br,
            gzip: self.gzip,
        }
    }

    /// Its bytes, when its body is base64.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .ok()
    }
}

/// The deployment started, and the token its uploader sends its blobs, manifest and `ready`
/// with (as a builder does); shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrebuiltStarted {
    pub deployment: super::Deployment,
    pub job_token: String,
    /// The answer to the handshake sent with the start, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<BlobCheckAnswer>,
    /// The start carried the whole manifest and every blob it needed: the deployment ended
    /// in it, as `deployment` says, and nothing more is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub complete: bool,
}

/// The answer to blobs reported stored: those not found in storage as said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobsAbsent {
    pub absent: Vec<String>,
}

/// What a sweep of storage removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    pub deployments: u64,
    pub blobs: u64,
    /// Other objects: manifests and files of deployments that are gone or never became ready.
    pub files: u64,
}
