//! Token scopes of the distribution spec: `resourcetype:resourcename:action[,action]*`.
//!
//! The resource type is `repository`, `registry` (as in `registry:catalog:*`) or, kept verbatim,
//! anything else a registry names (`repository(plugin)`). The resource name may itself hold
//! colons (a `host:port/path` prefix), so the type ends at the first colon and the actions begin
//! after the last one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::AuthError;

/// The resource type of a [`Scope`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// `repository`: a repository's manifests and blobs.
    Repository,
    /// `registry`: registry-wide resources (`registry:catalog:*`).
    Registry,
    /// Any other resource type, verbatim (`repository(plugin)`).
    Other(String),
}

impl ResourceKind {
    /// The resource type as written in a scope.
    pub fn as_str(&self) -> &str {
        match self {
            ResourceKind::Repository => "repository",
            ResourceKind::Registry => "registry",
            ResourceKind::Other(s) => s,
        }
    }

    fn from_str_checked(s: &str) -> Option<ResourceKind> {
        match s {
            "repository" => Some(ResourceKind::Repository),
            "registry" => Some(ResourceKind::Registry),
            "" => None,
            other
                if other
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !",:\"".contains(c)) =>
            {
                Some(ResourceKind::Other(other.to_owned()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scope: a resource and the actions wanted on it. Displays as
/// `repository:library/busybox:pull,push` (actions sorted, `*` allowed). Parse it with
/// [`str::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    kind: ResourceKind,
    name: String,
    actions: BTreeSet<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic() && c != '"')
}

fn valid_action(action: &str) -> bool {
    !action.is_empty()
        && action
            .chars()
            .all(|c| c.is_ascii_graphic() && !",:\"".contains(c))
}

impl Scope {
    /// A scope on `name` of type `kind` with `actions`. Fails when the name is empty or holds
    /// whitespace, control characters or quotes, when an action is empty or holds `,` or `:`, or
    /// when there is no action.
    pub fn new<I, S>(kind: ResourceKind, name: &str, actions: I) -> Result<Scope, AuthError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let actions: BTreeSet<String> = actions.into_iter().map(Into::into).collect();
        let invalid = || AuthError::InvalidScope {
            scope: format!(
                "{kind}:{name}:{}",
                actions.iter().cloned().collect::<Vec<_>>().join(",")
            ),
        };
        // Canonical form: `Other("repository")` is `Repository`.
        let Some(kind) = ResourceKind::from_str_checked(kind.as_str()) else {
            return Err(invalid());
        };
        if !valid_name(name) || actions.is_empty() || !actions.iter().all(|a| valid_action(a)) {
            return Err(invalid());
        }
        Ok(Scope {
            kind,
            name: name.to_owned(),
            actions,
        })
    }

    /// A `repository` scope: `Scope::repository("library/busybox", ["pull"])`.
    pub fn repository<I, S>(name: &str, actions: I) -> Result<Scope, AuthError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Scope::new(ResourceKind::Repository, name, actions)
    }

    /// The resource type.
    pub fn kind(&self) -> &ResourceKind {
        &self.kind
    }

    /// The resource name (`library/busybox`, `catalog`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions, sorted.
    pub fn actions(&self) -> &BTreeSet<String> {
        &self.actions
    }

    /// Whether this scope grants everything `other` asks for: same resource, and `other`'s
    /// actions are a subset of ours (or we hold `*`).
    pub fn covers(&self, other: &Scope) -> bool {
        self.kind == other.kind
            && self.name == other.name
            && (self.actions.contains("*") || other.actions.is_subset(&self.actions))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.kind, self.name)?;
        for (i, action) in self.actions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action)?;
        }
        Ok(())
    }
}

impl FromStr for Scope {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Scope, AuthError> {
        let invalid = || AuthError::InvalidScope {
            scope: s.to_owned(),
        };
        let (kind, rest) = s.split_once(':').ok_or_else(invalid)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(invalid)?;
        let kind = ResourceKind::from_str_checked(kind).ok_or_else(invalid)?;
        Scope::new(kind, name, actions.split(',')).map_err(|_| invalid())
    }
}

/// Scopes merged per resource: inserting `repository:a:pull` and `repository:a:push` gives
/// `repository:a:pull,push`. One token request can then cover `pull,push` on a push target and
/// `pull` on every cross-repository mount source. [`ScopeSet::key`] is a canonical string
/// (resources sorted by type then name, actions sorted) for caching tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet {
    resources: BTreeMap<(ResourceKind, String), BTreeSet<String>>,
}

impl ScopeSet {
    /// An empty set (an anonymous token request asks for no scope).
    pub fn new() -> ScopeSet {
        ScopeSet::default()
    }

    /// `repository:<repository>:pull`.
    pub fn pull(repository: &str) -> Result<ScopeSet, AuthError> {
        Ok(ScopeSet::from_iter([Scope::repository(
            repository,
            ["pull"],
        )?]))
    }

    /// `repository:<target>:pull,push` plus `repository:<source>:pull` for every mount source.
    pub fn push<'a>(
        target: &str,
        mount_sources: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, AuthError> {
        let mut set = ScopeSet::new();
        set.insert(Scope::repository(target, ["pull", "push"])?);
        for source in mount_sources {
            set.insert(Scope::repository(source, ["pull"])?);
        }
        Ok(set)
    }

    /// Adds a scope, merging its actions into those already held for its resource.
    pub fn insert(&mut self, scope: Scope) {
        self.resources
            .entry((scope.kind, scope.name))
            .or_default()
            .extend(scope.actions);
    }

    /// Adds every scope of `other`.
    pub fn merge(&mut self, other: &ScopeSet) {
        for ((kind, name), actions) in &other.resources {
            self.resources
                .entry((kind.clone(), name.clone()))
                .or_default()
                .extend(actions.iter().cloned());
        }
    }

    /// Whether the set holds no scope.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// The scopes, one per resource, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.resources.iter().map(|((kind, name), actions)| Scope {
            kind: kind.clone(),
            name: name.clone(),
            actions: actions.clone(),
        })
    }

    /// The scopes as strings, in canonical order (one `scope` query parameter each).
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }

    /// Whether every scope of `other` is covered by one of ours (see [`Scope::covers`]).
    pub fn covers(&self, other: &ScopeSet) -> bool {
        other.iter().all(|wanted| {
            self.resources
                .get(&(wanted.kind.clone(), wanted.name.clone()))
                .is_some_and(|held| held.contains("*") || wanted.actions.is_subset(held))
        })
    }

    /// The canonical cache key: the scopes in canonical order joined by spaces (the form of the
    /// OAuth2 `scope` parameter); `""` for the empty set.
    pub fn key(&self) -> String {
        self.to_strings().join(" ")
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> ScopeSet {
        let mut set = ScopeSet::new();
        set.extend(iter);
        set
    }
}

impl Extend<Scope> for ScopeSet {
    fn extend<T: IntoIterator<Item = Scope>>(&mut self, iter: T) {
        for scope in iter {
            self.insert(scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_sorts_actions() {
        let s = Scope::repository("library/busybox", ["push", "pull"]).unwrap();
        assert_eq!(s.to_string(), "repository:library/busybox:pull,push");
        let s = Scope::new(ResourceKind::Registry, "catalog", ["*"]).unwrap();
        assert_eq!(s.to_string(), "registry:catalog:*");
    }

    #[test]
    fn parse_round_trips() {
        for text in [
            "repository:library/busybox:pull",
            "repository:library/busybox:pull,push",
            "registry:catalog:*",
            "repository:localhost:5000/a/b:pull",
            "repository(plugin):vieux/sshfs:pull",
            "repository:a:*,delete,pull",
        ] {
            let s: Scope = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        let s: Scope = "repository:localhost:5000/a/b:push,pull".parse().unwrap();
        assert_eq!(s.kind(), &ResourceKind::Repository);
        assert_eq!(s.name(), "localhost:5000/a/b");
        assert_eq!(
            s.actions().iter().map(String::as_str).collect::<Vec<_>>(),
            ["pull", "push"]
        );
        let s: Scope = "repository(plugin):x:pull".parse().unwrap();
        assert_eq!(s.kind(), &ResourceKind::Other("repository(plugin)".into()));
    }

    #[test]
    fn parse_rejects_malformed() {
        for text in [
            "",
            "repository",
            "repository:busybox",
            ":busybox:pull",
            "repository::pull",
            "repository:busybox:",
            "repository:busybox:pull,,push",
            "repository:busy box:pull",
            "repository:busybox:pu ll",
            "repo\u{e9}:x:pull",
        ] {
            let err = text.parse::<Scope>().unwrap_err();
            assert!(matches!(err, AuthError::InvalidScope { .. }), "{text}");
        }
        assert!(Scope::repository("a", Vec::<String>::new()).is_err());
        assert!(Scope::new(ResourceKind::Other("a:b".into()), "x", ["pull"]).is_err());
        let s = Scope::new(ResourceKind::Other("registry".into()), "catalog", ["*"]).unwrap();
        assert_eq!(s.kind(), &ResourceKind::Registry);
    }

    #[test]
    fn set_merges_actions_per_resource() {
        let mut set = ScopeSet::new();
        assert!(set.is_empty());
        assert_eq!(set.key(), "");
        set.insert("repository:b/src:pull".parse().unwrap());
        set.insert("repository:a/target:push".parse().unwrap());
        set.insert("repository:a/target:pull".parse().unwrap());
        set.insert("repository:b/src:pull".parse().unwrap());
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.key(),
            "repository:a/target:pull,push repository:b/src:pull"
        );
        assert_eq!(set.to_string(), set.key());
        assert_eq!(
            set.to_strings(),
            ["repository:a/target:pull,push", "repository:b/src:pull"]
        );
    }

    #[test]
    fn key_is_independent_of_insertion_order() {
        let a: ScopeSet = [
            "repository:x:push",
            "registry:catalog:*",
            "repository:x:pull",
        ]
        .iter()
        .map(|s| s.parse::<Scope>().unwrap())
        .collect();
        let b: ScopeSet = ["repository:x:pull,push", "registry:catalog:*"]
            .iter()
            .map(|s| s.parse::<Scope>().unwrap())
            .collect();
        assert_eq!(a.key(), b.key());
        assert_eq!(a, b);
    }

    #[test]
    fn push_and_pull_constructors() {
        let set = ScopeSet::push("me/app", ["library/alpine", "me/base"]).unwrap();
        assert_eq!(
            set.key(),
            "repository:library/alpine:pull repository:me/app:pull,push repository:me/base:pull"
        );
        assert_eq!(
            ScopeSet::pull("library/busybox").unwrap().key(),
            "repository:library/busybox:pull"
        );
        assert!(ScopeSet::pull("").is_err());
        assert!(ScopeSet::push("a", ["bad name"]).is_err());
    }

    #[test]
    fn merge_and_covers() {
        let mut a = ScopeSet::pull("x").unwrap();
        let b = ScopeSet::push("x", ["y"]).unwrap();
        assert!(!a.covers(&b));
        assert!(b.covers(&a));
        a.merge(&b);
        assert_eq!(a, b);
        let star: ScopeSet = ["repository:x:*".parse::<Scope>().unwrap()]
            .into_iter()
            .collect();
        assert!(star.covers(&ScopeSet::pull("x").unwrap()));
        assert!(!star.covers(&b));
        assert!(star.covers(&ScopeSet::new()));
        let s: Scope = "repository:x:*".parse().unwrap();
        assert!(s.covers(&"repository:x:pull,push".parse().unwrap()));
        assert!(!s.covers(&"repository:y:pull".parse().unwrap()));
    }
}
