//! tar (ustar, GNU, pax) through the `tar` crate over the in-memory bytes;
//! members are borrowed from the input.
use crate::{ChildMeta, Extractor, Flow};
use std::io::Cursor;

/// Every regular member is handed over, borrowed from the input, under its
/// full path (GNU long names and pax `path` honoured). A member whose data
/// runs past the end keeps what is there and reports `Heuristics.Broken.Tar`,
/// as does a header that does not parse after the first one.
pub(crate) fn tar(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut ar = ::tar::Archive::new(Cursor::new(data));
    let entries = match ar.entries() {
        Ok(e) => e,
        Err(e) => {
            ex.broken("Tar", &e.to_string());
            return;
        }
    };
    let mut index = 0usize;
    for entry in entries {
        if ex.done() {
            return;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                ex.broken("Tar", &format!("after {index} members: {e}"));
                return;
            }
        };
        index += 1;
        let et = entry.header().entry_type();
        if !(et.is_file() || et.is_contiguous() || et.is_gnu_sparse()) {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let seg = if path.is_empty() {
            format!("member[{index}]")
        } else {
            path
        };
        let start = entry.raw_file_position();
        // A GNU sparse member stores fewer bytes than its expanded size.
        let size = if et.is_gnu_sparse() {
            entry.header().entry_size().unwrap_or(0)
        } else {
            entry.size()
        };
        let end = start.saturating_add(size);
        let len = data.len() as u64;
        let (s, e) = (start.min(len) as usize, end.min(len) as usize);
        let bytes = data.get(s..e).unwrap_or(&[]);
        let short = end > len;
        if ex.child(ChildMeta::named(seg.clone()), bytes) == Flow::Stop {
            return;
        }
        if short {
            ex.broken(
                "Tar",
                &format!("{seg}: data runs past the end of the archive"),
            );
            return;
        }
    }
}
