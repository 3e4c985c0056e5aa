//! Archives and compressed streams.
use crate::Extractor;
pub(crate) fn zip(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn gzip(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn bzip2(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn xz(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn tar(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn sevenz(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn cpio(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn cab(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
pub(crate) fn szdd(_data: &[u8], _ex: &mut Extractor<'_, '_, '_>) {}
