//! A redeploy in one request. When few files hold what the last upload of a folder did not
//! (read again, with a digest that is not the one found then) and they are small, they go with the whole manifest in the
//! request that starts the deployment, as the few small files of any upload go through the API
//! one by one; the server ends the deployment there when it holds every other blob. A first
//! upload, many changes, large files, or blobs the project no longer holds go on as after a
//! handshake. This is the decision; the upload's `begin_whole` carries it out.

use super::pack::{FEWEST_PACKED, PACKABLE};

/// Most bytes a manifest sent whole may take: with its blobs, its JSON stays within what a
/// start takes (8 MB).
const MOST_LISTING: usize = 6 * 1024 * 1024;

/// At most how many bytes a file's entry takes in a manifest's JSON (a path's characters may
/// each be escaped).
pub(super) fn entry_bytes(path: &str, content_type: &str) -> usize {
    2 * path.len() + content_type.len() + 200
}

/// Whether an upload whose manifest takes at most `listing` bytes, and whose blobs that may be
/// new have `fresh` sizes, begins with the whole manifest: fewer of them than would be packed,
/// each small enough to be packed, together no more than one small blob's worth.
pub(super) fn goes_whole(listing: usize, fresh: &[u64]) -> bool {
    listing <= MOST_LISTING
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
        const MB: usize = 1024 * 1024;
        // The listing of 1,000 files.
        const SITE: usize = 300 * 1024;
        let table: &[(usize, &[u64], bool, &str)] = &[
            (SITE, &[6 * KB], true, "one page changed"),
            (SITE, &[], true, "nothing changed"),
            (1_000, &[KB, KB, KB], true, "a small site read whole"),
            (SITE, &[KB; 7], true, "seven changes"),
            (
                SITE,
                &[KB; 8],
                false,
                "eight: packed, as any upload packs them",
            ),
            (
                SITE,
                &[300 * KB],
                false,
                "one large file: straight to storage",
            ),
            (
                SITE,
                &[200 * KB, 100 * KB],
                false,
                "more than a small blob's worth",
            ),
            (SITE, &[256 * KB], true, "exactly one small blob's worth"),
            (6 * MB, &[KB], true, "the largest listing"),
            (
                6 * MB + 1,
                &[KB],
                false,
                "a manifest too large to send whole",
            ),
        ];
        for (listing, fresh, whole, why) in table {
            assert_eq!(goes_whole(*listing, fresh), *whole, "{why}");
        }
        // 10,000 files with paths of 60 characters are sent whole; 20,000 with paths of 100, not.
        let entry = |path_len| entry_bytes(&"p".repeat(path_len), "text/html; charset=utf-8");
        assert!(goes_whole(10_000 * entry(60), &[KB]));
        assert!(!goes_whole(20_000 * entry(100), &[KB]));
    }
}
