//! Mail: MIME (via mail-parser, with fallbacks), mbox, uuencode, BinHex, TNEF.
use crate::Extractor;
pub(crate) fn extract(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn extract_mbox(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn extract_uuencode(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn extract_binhex(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn extract_tnef(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
