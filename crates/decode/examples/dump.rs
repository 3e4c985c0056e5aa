//! Prints the objects and findings the decoder makes of a file (a debugging aid):
//! `cargo run -p mxguard-decode --example dump -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let data = std::fs::read(&path).expect("readable file");
    let d = mxguard_decode::Decoder::default().decode(&data);
    for o in &d.objects {
        println!(
            "{:>9} {:<10} {:<40} name={:?} declared={:?}",
            o.data.len(),
            o.file_type.name(),
            if o.location.is_empty() {
                "<input>"
            } else {
                &o.location
            },
            o.name,
            o.declared_type
        );
    }
    for f in &d.findings {
        println!("finding {} at {:?}: {}", f.name, f.location, f.detail);
    }
}
