//! Documents: OLE2 (+VBA), PDF, RTF. OOXML is a zip: its members arrive through the zip reader.
use crate::Extractor;
pub(crate) fn ole2(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn pdf(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn rtf(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
