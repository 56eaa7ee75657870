//! The durable outbound queue: storage only (blocking files, no sockets or protocols), like
//! `mailbox`. [`store`] keeps each message and its [`envelope::Envelope`]; [`Router`] sends a
//! message with a remote recipient there and the rest to the Maildir store. The delivery of
//! queued mail is `crate::outbound`.
pub mod envelope;
pub mod store;

use std::sync::Arc;

use crate::mailbox::delivery::{Delivery, Origin, Recipient, Target};

pub use envelope::{Envelope, RecipientState, State};
pub use store::QueueStore;

/// Where accepted mail goes. All recipients local: their Maildirs, as always. Any remote one
/// (or one asking for a success report, RFC 3461): the whole message into the queue (one
/// durable commit, one 250), whose runner then delivers the local recipients to their Maildirs
/// and the others to their next hop.
pub struct Router {
    pub local: Arc<dyn Target>,
    pub queue: Arc<QueueStore>,
}

impl Target for Router {
    fn begin(self: Arc<Self>, origin: &Origin, recipients: &[Recipient]) -> Box<dyn Delivery> {
        if recipients.iter().any(Recipient::through_queue) {
            Arc::clone(&self.queue).begin(origin, recipients)
        } else {
            Arc::clone(&self.local).begin(origin, recipients)
        }
    }
}
