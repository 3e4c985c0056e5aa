//! Microsoft Cabinet through the `cab` crate: stored, MSZIP and LZX folders
//! (Quantum is reported as unscannable). Members are streamed.
use crate::{ChildMeta, Extractor, Flow};
use std::io::Cursor;

/// Every file of every folder is streamed through [`Extractor::child_reader`];
/// the whole cabinet's size is the packed size for the ratio limit (a cabinet
/// does not say how many compressed bytes one file takes). A header that
/// does not parse or a read error is reported as broken.
pub(crate) fn cab(data: &[u8], ex: &mut Extractor<'_, '_, '_>) {
    let mut cabinet = match ::cab::Cabinet::new(Cursor::new(data)) {
        Ok(c) => c,
        Err(e) => {
            ex.broken("Cab", &e.to_string());
            return;
        }
    };
    // Names and folder types first: reading a file borrows the cabinet.
    let mut files: Vec<(String, Option<String>)> = Vec::new();
    for folder in cabinet.folder_entries() {
        let unsupported = match folder.compression_type() {
            ::cab::CompressionType::Quantum(..) => {
                Some("Quantum compression not supported".to_string())
            }
            _ => None,
        };
        for f in folder.file_entries() {
            files.push((f.name().to_string(), unsupported.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (name, unsupported) in files {
        if ex.done() {
            return;
        }
        let seg = name.replace('\\', "/");
        if let Some(why) = unsupported {
            if ex.unscannable("Cab", Some(&seg), &why) == Flow::Stop {
                return;
            }
            continue;
        }
        if !seen.insert(name.clone()) {
            // The crate opens files by name: a second file of the same name
            // cannot be reached.
            if ex.unscannable(
                "Cab",
                Some(&seg),
                "duplicate member name; only the first is decoded",
            ) == Flow::Stop
            {
                return;
            }
            continue;
        }
        match cabinet.read_file(&name) {
            Ok(mut r) => {
                if ex.child_reader(ChildMeta::named(seg), &mut r, Some(data.len() as u64))
                    == Flow::Stop
                {
                    return;
                }
            }
            Err(e) => {
                if ex.broken("Cab", &format!("{seg}: {e}")) == Flow::Stop {
                    return;
                }
            }
        }
    }
}
