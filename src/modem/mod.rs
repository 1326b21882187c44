//! The modem side: the AT conversation in PDU mode (sans-IO [`Session`]), the
//! tokio driver that owns the port and the clock, transports (serial, TCP), and
//! several modems as one pool.

mod error;
mod event;
mod framer;
mod info;
mod parse;
mod quirks;
mod session;

pub use error::{CmeError, CmsClass, CmsError, FinalError, SubmitError};
pub use framer::{AtFramer, Frame, MAX_LINE};
pub use quirks::{Quirks, for_model as quirks_for_model};
pub use session::{Event, JobId, ModemInfo, Receipt, RegState, Session, SessionConfig};
mod driver;
mod pool;
mod transport;

pub use driver::{BoxFuture, HEARTBEAT, Job, ModemConfig, ModemState, SendOutcome, Work, run};
pub use pool::{Accept, MemoryWork, Pool, WorkEvent};
pub use transport::{DEFAULT_BAUD, Port, PortSpec, open};
