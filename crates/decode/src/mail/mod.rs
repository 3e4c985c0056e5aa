//! Mail: MIME messages, mbox, uuencode, BinHex, TNEF.
//!
//! Each reader hands every member to the walk through the [`Extractor`], which
//! enforces the budget and opens members that are containers themselves (an
//! attached message is re-parsed as mail, a text part holding uuencode goes to
//! the uuencode reader, ...). All readers are single-pass over their input,
//! never recurse on input structure, never panic, and allocate at most about
//! the input size per member (decoders only shrink; run-length expansion is
//! capped by [`Extractor::room`]).
use crate::Extractor;

mod binhex;

mod header;
mod mbox;
mod mime;
pub mod rewrite;
mod tnef;
mod uu;

#[cfg(test)]
mod tests;

/// A message (RFC 5322 / MIME): every leaf part becomes a child located
/// `part[N.M]` (IMAP section numbers) or `part[N.M]/<file name>`, transfer
/// encoding decoded, text parts also decoded to UTF-8 from their charset. An
/// attached `message/rfc822` is one child with its raw (transfer-decoded)
/// bytes. See [`mime`].
pub(crate) fn extract(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    mime::extract(data, ex)
}

/// An mbox: each message after a `From ` line becomes `msg[N]`.
pub(crate) fn extract_mbox(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    mbox::extract_mbox(data, ex)
}

/// Text with `begin <mode> <name>` blocks: each block becomes a child named by its file name.
pub(crate) fn extract_uuencode(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    uu::extract_uuencode(data, ex)
}

/// BinHex 4.0: the data fork (named by the header) and a non-empty resource fork.
pub(crate) fn extract_binhex(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    binhex::extract_binhex(data, ex)
}

/// MS-TNEF: attachments named by their file names, and message bodies.
pub(crate) fn extract_tnef(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    tnef::extract_tnef(data, ex)
}
