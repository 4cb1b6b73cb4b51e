//! Whose rights tests run with, and what of the service they can see.
//!
//! Tests are code the team runs on purpose, but they should not read the
//! service's secrets (`DATABASE_URL` and its password) out of
//! `/proc/<service>/environ` or its memory. A non-dumpable process's
//! `/proc` files belong to root and it cannot be ptraced, so processes of
//! the same user cannot read them; only root can. Running the tests as
//! another user (`RUN_AS_USER`, when the service runs as root) also keeps
//! them from signalling the service or its supervisors, and from writing
//! what only the service's user may write.

use std::ffi::CString;
use std::path::PathBuf;

use nix::sys::prctl;
use nix::unistd::{getgrouplist, setgid, setgroups, setuid, Gid, Uid, User};

/// Makes this process non-dumpable (see the module's documentation).
/// Programs it executes are dumpable again, as usual.
pub fn make_undumpable() -> Result<(), String> {
    prctl::set_dumpable(false).map_err(|e| format!("cannot make the service non-dumpable: {e}"))
}

/// The user tests run as, resolved once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Every group of the user, its primary group included.
    pub groups: Vec<u32>,
    pub home: PathBuf,
}

impl RunAs {
    /// Looks up `RUN_AS_USER` (a name or a uid) for a service running as
    /// root; refuses anything else with a message for the operator.
    pub fn resolve(spec: &str) -> Result<RunAs, String> {
        if !Uid::effective().is_root() {
            return Err(format!(
                "RUN_AS_USER={spec} needs the service to run as root (it runs as uid {}); \
                 unset RUN_AS_USER to run the tests as the service's own user",
                Uid::effective()
            ));
        }
        let found = match spec.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(spec),
        }
        .map_err(|e| format!("RUN_AS_USER={spec}: cannot look the user up: {e}"))?;
        let Some(user) = found else {
            return Err(format!(
                "RUN_AS_USER={spec}: no such user (create it, e.g. useradd --system {spec})"
            ));
        };
        if user.uid.is_root() {
            return Err(format!(
                "RUN_AS_USER={spec} is root; name an unprivileged user, or unset it"
            ));
        }
        let name = CString::new(user.name.clone())
            .map_err(|_| format!("RUN_AS_USER={spec}: the user's name is not valid"))?;
        let groups = getgrouplist(&name, user.gid)
            .map_err(|e| format!("RUN_AS_USER={spec}: cannot list the user's groups: {e}"))?;
        Ok(RunAs {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups: groups.into_iter().map(Gid::as_raw).collect(),
            home: user.dir,
        })
    }

    /// The ids as the supervisor receives them: `uid:gid:group,group…`.
    pub fn ids(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(u32::to_string).collect();
        format!("{}:{}:{}", self.uid, self.gid, groups.join(","))
    }
}

/// Numeric ids to switch to, parsed from [`RunAs::ids`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
}

impl Ids {
    pub fn parse(raw: &str) -> Option<Ids> {
        let mut parts = raw.split(':');
        let uid = parts.next()?.parse().ok()?;
        let gid = parts.next()?.parse().ok()?;
        let groups = parts
            .next()?
            .split(',')
            .filter(|g| !g.is_empty())
            .map(|g| g.parse().map(Gid::from_raw))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        if parts.next().is_some() || uid == 0 {
            return None;
        }
        Some(Ids {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            groups,
        })
    }

    /// Becomes that user for good: groups first, then the group, then the
    /// user (after which nothing else could be changed). Meant for a
    /// child between fork and exec: only system calls, no allocation.
    pub fn switch(&self) -> std::io::Result<()> {
        setgroups(&self.groups)?;
        setgid(self.gid)?;
        setuid(self.uid)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_through_the_environment_unchanged() {
        let run_as = RunAs {
            name: "tests".into(),
            uid: 1001,
            gid: 1002,
            groups: vec![1002, 27],
            home: "/home/tests".into(),
        };
        let ids = Ids::parse(&run_as.ids()).unwrap();
        assert_eq!(ids.uid, Uid::from_raw(1001));
        assert_eq!(ids.gid, Gid::from_raw(1002));
        assert_eq!(ids.groups, [Gid::from_raw(1002), Gid::from_raw(27)]);
        assert!(Ids::parse("1:2:").is_some());
        for bad in ["", "1", "1:2", "x:2:3", "1:2:3:4", "0:0:0", "1:2:a"] {
            assert_eq!(Ids::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_root_may_run_tests_as_someone_else() {
        if Uid::effective().is_root() {
            assert!(RunAs::resolve("no-such-user-here").is_err());
            assert!(RunAs::resolve("root").is_err());
            assert!(RunAs::resolve("0").is_err());
        } else {
            let refused = RunAs::resolve("nobody").unwrap_err();
            assert!(refused.contains("root"), "{refused}");
        }
    }
}
