//! Who is logged in, and whether accounts are on at all: loaded once by
//! the app, read by every component that shows or hides what a role may
//! not use.

use shared::{Me, Role};
use yew::prelude::*;

/// The session as the SPA knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Session {
    /// Whether the answers below have arrived.
    pub loaded: bool,
    /// False with `AUTH=off`: everyone is an admin.
    pub auth: bool,
    /// The logged-in user, if any.
    pub me: Option<Me>,
}

impl Session {
    /// Whether the user's role allows what needs `role`: buttons it does
    /// not are not shown.
    pub fn may(&self, role: Role) -> bool {
        if !self.loaded {
            return false;
        }
        !self.auth || self.me.as_ref().is_some_and(|me| me.role >= role)
    }

    /// Whether the user may change what belongs to `owner` (a run, a
    /// reservation): its own, or anything for an admin.
    pub fn may_act_for(&self, owner: &str) -> bool {
        self.may(Role::Admin)
            || (self.may(Role::Member) && self.me.as_ref().is_some_and(|me| me.username == owner))
    }

    pub fn username(&self) -> Option<&str> {
        self.me.as_ref().map(|me| me.username.as_str())
    }
}

#[hook]
pub fn use_session() -> Session {
    use_context::<Session>().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(role: Role) -> Session {
        Session {
            loaded: true,
            auth: true,
            me: Some(Me {
                username: "ann".into(),
                role,
            }),
        }
    }

    #[test]
    fn roles_allow_what_they_include() {
        assert!(session(Role::Member).may(Role::Viewer));
        assert!(!session(Role::Viewer).may(Role::Member));
        assert!(
            !Session::default().may(Role::Viewer),
            "nothing before it loaded"
        );
        let off = Session {
            loaded: true,
            auth: false,
            me: None,
        };
        assert!(off.may(Role::Admin));
    }

    #[test]
    fn members_act_for_themselves_admins_for_all() {
        assert!(session(Role::Member).may_act_for("ann"));
        assert!(!session(Role::Member).may_act_for("bob"));
        assert!(!session(Role::Viewer).may_act_for("ann"));
        assert!(session(Role::Admin).may_act_for("bob"));
    }
}
