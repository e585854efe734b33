//! Which stored coding of a file the client takes (`Accept-Encoding`).

use axum::http::{HeaderMap, header};
use scalemesh_core::layout::{Encoding, ManifestEntry};

/// The stored coding the client takes best: br before gzip when it weighs them alike, never one
/// it refuses (`;q=0`).
pub fn negotiate(request: &HeaderMap, entry: &ManifestEntry) -> Option<Encoding> {
    if entry.br.is_none() && entry.gzip.is_none() {
        return None;
    }
    let mut weights: Vec<(String, f32)> = Vec::new();
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if !name.is_empty() {
                weights.push((name, q));
            }
        }
    }
    let weight = |token: &str| {
        weights
            .iter()
            .find(|(n, _)| n == token || (token == "gzip" && n == "x-gzip"))
            .or_else(|| weights.iter().find(|(n, _)| n == "*"))
            .map_or(0.0, |(_, q)| *q)
    };
    let mut best: Option<(Encoding, f32)> = None;
    for encoding in Encoding::ALL {
        let q = weight(encoding.token());
        if entry.variant(encoding).is_some() && q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((encoding, q));
        }
    }
    best.map(|(e, _)| e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::headers::tests::with;

    #[test]
    fn negotiates_codings() {
        let entry = ManifestEntry {
            size: 10,
            content_type: "text/html".into(),
            sha256: "0".repeat(64),
            immutable: false,
            br: Some(5),
            gzip: Some(6),
            pack: None,
        };
        let pick = |v: &str| negotiate(&with(header::ACCEPT_ENCODING, v), &entry);
        assert_eq!(pick("gzip, deflate, br"), Some(Encoding::Brotli));
        assert_eq!(pick("gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;q=0, gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("br;q=0.5, gzip;q=0.8"), Some(Encoding::Gzip));
        assert_eq!(pick("*"), Some(Encoding::Brotli));
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(negotiate(&HeaderMap::new(), &entry), None);
    }
}
