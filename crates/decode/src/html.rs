//! HTML: links with their text, normalised text, scripts and data: URIs as objects.
use crate::{Extractor, Link};
pub struct HtmlDoc {
    pub links: Vec<Link>,
    pub text: String,
}
pub fn analyse(_data: &[u8]) -> HtmlDoc {
    HtmlDoc {
        links: Vec::new(),
        text: String::new(),
    }
}
pub(crate) fn extract(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
