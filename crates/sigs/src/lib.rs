//! mxguard's signature database.
pub mod cvd;
pub mod exe;
pub mod filetype;
pub mod target;
