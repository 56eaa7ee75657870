//! Dropping root after the ports are bound: `[server] user` / `group`.

use std::ffi::CString;
use std::path::Path;

use anyhow::{Context, bail};
use nix::unistd::{Gid, Group, Uid, User, chown, initgroups, setgid, setuid};

/// When running as root with a user configured: hands `paths` to that user, then switches to it.
/// Returns the user switched to, if any.
pub fn drop_to(user: &str, group: &str, paths: &[&Path]) -> anyhow::Result<Option<String>> {
    if user.is_empty() {
        return Ok(None);
    }
    if !Uid::effective().is_root() {
        let me = User::from_uid(Uid::effective()).ok().flatten();
        if me.as_ref().map(|u| u.name.as_str()) != Some(user) {
            tracing::warn!(
                user,
                "[server] user is set but smtpd was not started as root; running as the current user"
            );
        }
        return Ok(None);
    }
    let u = User::from_name(user)
        .with_context(|| format!("cannot look up user {user:?}"))?
        .with_context(|| format!("[server] user {user:?} does not exist"))?;
    let gid: Gid = if group.is_empty() {
        u.gid
    } else {
        Group::from_name(group)
            .with_context(|| format!("cannot look up group {group:?}"))?
            .with_context(|| format!("[server] group {group:?} does not exist"))?
            .gid
    };
    for p in paths {
        if p.exists() {
            chown(*p, Some(u.uid), Some(gid))
                .with_context(|| format!("cannot give {} to {user}", p.display()))?;
        }
    }
    let name = CString::new(user).context("user name contains NUL")?;
    initgroups(&name, gid).context("initgroups failed")?;
    setgid(gid).context("setgid failed")?;
    setuid(u.uid).context("setuid failed")?;
    if Uid::effective().is_root() {
        bail!("still root after setuid({})", u.uid);
    }
    Ok(Some(user.to_string()))
}
