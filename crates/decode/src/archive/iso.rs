//! ISO 9660 images.
use crate::Extractor;

pub(crate) fn iso(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
