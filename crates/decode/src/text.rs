//! Text: decoding to UTF-8, normalisation for content rules, links.
use crate::Link;
pub fn to_utf8(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
pub fn normalize(t: &str) -> String {
    t.to_string()
}
pub fn links(_t: &str) -> Vec<Link> {
    Vec::new()
}
