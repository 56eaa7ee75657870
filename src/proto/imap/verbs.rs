//! Which command runs in which state (RFC 3501 section 6), as one table-like match; each verb
//! family lives in its own file.

use imap_codec::imap_types::command::{CommandBody, StoreModifier};

use super::extended::Extended;
use super::session::{ImapSession, State};
use super::{auth, fetch, folders, list, search, selected};

/// Verbs we know, for "Unknown command" versus "Syntax error".
const KNOWN: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGIN",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "CHECK",
    "CLOSE",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID",
    "IDLE",
    "ENABLE",
    "UNSELECT",
    "ID",
    "NAMESPACE",
];

pub fn is_known(verb: &[u8]) -> bool {
    let v = String::from_utf8_lossy(verb);
    let v = v.trim_end_matches(['\r', '\n']);
    KNOWN.iter().any(|k| k.eq_ignore_ascii_case(v))
}

pub fn dispatch(s: &mut ImapSession, tag: &str, body: CommandBody<'static>) {
    use CommandBody as C;
    let st = s.state;
    let authed = matches!(st, State::Authenticated | State::Selected);
    let selected = st == State::Selected;
    match body {
        C::Capability => auth::capability(s, tag),
        C::Noop | C::Check => selected::noop(s, tag),
        C::Logout => auth::logout(s, tag),
        C::Id { .. } => auth::id(s, tag),
        C::StartTLS if st == State::NotAuthenticated => auth::starttls(s, tag),
        C::Login { username, password } if st == State::NotAuthenticated => {
            auth::login(s, tag, username.as_ref(), password.declassify().as_ref())
        }
        C::Authenticate {
            mechanism,
            initial_response,
        } if st == State::NotAuthenticated => auth::authenticate(
            s,
            tag,
            &mechanism,
            initial_response.as_ref().map(|r| r.declassify().as_ref()),
        ),
        C::Enable { capabilities } if authed => {
            let names: Vec<String> = capabilities
                .as_ref()
                .iter()
                .map(|c| c.to_string())
                .collect();
            auth::enable(s, tag, &names)
        }
        C::Namespace if authed => auth::namespace(s, tag),
        C::Select {
            mailbox,
            parameters,
        } if authed => folders::select(s, tag, &mailbox, false, &parameters),
        C::Examine {
            mailbox,
            parameters,
        } if authed => folders::select(s, tag, &mailbox, true, &parameters),
        C::Create { mailbox } if authed => folders::create(s, tag, &mailbox),
        C::Delete { mailbox } if authed => folders::delete(s, tag, &mailbox),
        C::Rename { from, to } if authed => folders::rename(s, tag, &from, &to),
        C::Subscribe { mailbox } if authed => folders::subscribe(s, tag, &mailbox, true),
        C::Unsubscribe { mailbox } if authed => folders::subscribe(s, tag, &mailbox, false),
        C::List {
            reference,
            mailbox_wildcard,
        } if authed => list::list(s, tag, &reference, &mailbox_wildcard, false),
        C::Lsub {
            reference,
            mailbox_wildcard,
        } if authed => list::list(s, tag, &reference, &mailbox_wildcard, true),
        C::Status {
            mailbox,
            item_names,
        } if authed => folders::status(s, tag, &mailbox, &item_names),
        C::Append {
            mailbox,
            flags,
            date,
            message,
        } if authed => folders::append(s, tag, &mailbox, &flags, date.as_ref(), &message),
        C::Idle if authed => selected::idle(s, tag),
        C::Close if selected => selected::close(s, tag, true),
        C::Unselect if selected => selected::close(s, tag, false),
        C::Expunge if selected => selected::expunge(s, tag, None),
        C::ExpungeUid { sequence_set } if selected => {
            selected::expunge(s, tag, Some(&sequence_set))
        }
        C::Search { criteria, uid, .. } if selected => {
            search::search(s, tag, criteria.as_ref(), uid, None)
        }
        C::Fetch {
            sequence_set,
            macro_or_item_names,
            uid,
            modifiers,
        } if selected => fetch::fetch(s, tag, &sequence_set, macro_or_item_names, uid, &modifiers),
        C::Store {
            sequence_set,
            kind,
            response,
            flags,
            uid,
            modifiers,
        } if selected => {
            let unchanged_since = modifiers
                .iter()
                .map(|m| match m {
                    StoreModifier::UnchangedSince(u) => *u,
                })
                .next();
            let how = selected::StoreHow {
                kind,
                response,
                uid,
                unchanged_since,
            };
            selected::store(s, tag, &sequence_set, how, &flags)
        }
        C::Copy {
            sequence_set,
            mailbox,
            uid,
        } if selected => selected::copy(s, tag, &sequence_set, &mailbox, uid, false),
        C::Move {
            sequence_set,
            mailbox,
            uid,
        } if selected => selected::copy(s, tag, &sequence_set, &mailbox, uid, true),
        other => {
            let text = match (st, other.name()) {
                (State::NotAuthenticated, _) => "Log in first",
                (State::Authenticated, n) if is_selected_verb(n) => "Select a folder first",
                (_, "STARTTLS" | "LOGIN" | "AUTHENTICATE") => "Already authenticated",
                _ => "Command not supported",
            };
            s.bad(tag, text);
        }
    }
}

/// The commands read by [`super::extended`] rather than by imap-codec.
pub fn dispatch_extended(s: &mut ImapSession, tag: &str, cmd: Extended) {
    match cmd {
        Extended::Search { uid, ret, criteria } => match s.state {
            State::Selected => search::search(s, tag, &criteria, uid, Some(ret)),
            State::Authenticated => s.bad(tag, "Select a folder first"),
            _ => s.bad(tag, "Log in first"),
        },
        Extended::List(cmd) => match s.state {
            State::Authenticated | State::Selected => list::list_extended(s, tag, &cmd),
            _ => s.bad(tag, "Log in first"),
        },
    }
}

fn is_selected_verb(name: &str) -> bool {
    matches!(
        name,
        "CLOSE"
            | "UNSELECT"
            | "EXPUNGE"
            | "SEARCH"
            | "FETCH"
            | "STORE"
            | "COPY"
            | "MOVE"
            | "UID EXPUNGE"
            | "UID SEARCH"
            | "UID FETCH"
            | "UID STORE"
            | "UID COPY"
            | "UID MOVE"
    )
}
