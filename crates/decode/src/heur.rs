//! Heuristics on names and types.
use crate::{DecodeOptions, ScanObject};
use mxguard_types::Finding;
pub(crate) fn name_checks(_o: &DecodeOptions, _obj: &ScanObject<'_>, _f: &mut dyn FnMut(Finding)) {}
pub(crate) fn object_checks(
    _o: &DecodeOptions,
    _obj: &ScanObject<'_>,
    _f: &mut dyn FnMut(Finding),
) {
}
