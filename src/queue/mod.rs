//! The durable outbound queue: storage only (blocking files, no sockets or protocols), like
//! `mailbox`. [`store`] keeps each message and its [`envelope::Envelope`]; [`Router`] sends a
//! message with a remote recipient there and the rest to the Maildir store. The delivery of
//! queued mail is `crate::outbound`.
pub mod envelope;
pub mod store;

use std::sync::Arc;

use crate::mailbox::delivery::{Delivery, Recipient, Target};

pub use envelope::{Envelope, RecipientState, State};
pub use store::QueueStore;

/// Where accepted mail goes. All recipients local: their Maildirs, as always. Any remote one:
/// the whole message into the queue (one durable commit, one 250), whose runner then delivers
/// the local recipients to their Maildirs and the others to their next hop.
pub struct Router {
    pub local: Arc<dyn Target>,
    pub queue: Option<Arc<QueueStore>>,
}

impl Target for Router {
    fn begin(self: Arc<Self>, sender: &str, recipients: &[Recipient]) -> Box<dyn Delivery> {
        match &self.queue {
            Some(q) if recipients.iter().any(|r| r.remote) => {
                Arc::clone(q).begin(sender, recipients)
            }
            _ => Arc::clone(&self.local).begin(sender, recipients),
        }
    }
}
