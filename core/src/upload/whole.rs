//! A redeploy in one request. When few files changed since the last upload of a folder (their
//! digests had to be read again) and they are small, they go with the whole manifest in the
//! request that starts the deployment, as the few small files of any upload go through the API
//! one by one; the server ends the deployment there when it holds every other blob. A first
//! upload, many changes, large files, or blobs the project no longer holds go on as after a
//! handshake. This is the decision; the upload's `begin_whole` carries it out.

use super::pack::{FEWEST_PACKED, PACKABLE};

/// Most files a manifest sent whole may list: its JSON stays well within what a start takes.
const MOST_FILES: usize = 20_000;

/// Whether an upload of `files` files whose blobs read again have `fresh` sizes begins with
/// the whole manifest: fewer of them than would be packed, each small enough to be packed,
/// together no more than one small blob's worth.
pub(super) fn goes_whole(files: usize, fresh: &[u64]) -> bool {
    files <= MOST_FILES
        && fresh.len() < FEWEST_PACKED
        && fresh.iter().all(|size| *size <= PACKABLE)
        && fresh.iter().sum::<u64>() <= PACKABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_small_changes_go_whole() {
        const KB: u64 = 1024;
        let table: &[(usize, &[u64], bool, &str)] = &[
            (1_000, &[6 * KB], true, "one page changed"),
            (1_000, &[], true, "nothing changed"),
            (3, &[KB, KB, KB], true, "a small site read whole"),
            (1_000, &[KB; 7], true, "seven changes"),
            (
                1_000,
                &[KB; 8],
                false,
                "eight: packed, as any upload packs them",
            ),
            (
                1_000,
                &[300 * KB],
                false,
                "one large file: straight to storage",
            ),
            (
                1_000,
                &[200 * KB, 100 * KB],
                false,
                "more than a small blob's worth",
            ),
            (1_000, &[256 * KB], true, "exactly one small blob's worth"),
            (20_000, &[KB], true, "the most files"),
            (20_001, &[KB], false, "a manifest too large to send whole"),
        ];
        for (files, fresh, whole, why) in table {
            assert_eq!(goes_whole(*files, fresh), *whole, "{why}");
        }
    }
}
