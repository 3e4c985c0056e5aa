//! The sans-IO SMTP protocol layer: [`command`] lines, [`data`] after DATA and
//! BDAT, and [`reply`] formatting. No I/O, no async runtime.

pub mod command;
pub mod data;
pub mod reply;

pub use command::{parse, parse_limited, Address, Command, MailParams, ParseError, RcptParams};
pub use data::{BdatReceiver, DataError, DataReceiver, Feed};
pub use reply::Reply;
