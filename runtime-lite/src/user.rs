//! Resolving `--user` / `USER` the way docker (runc's `GetExecUser` plus moby's `getUser`) does,
//! from the contents of the image's `/etc/passwd` and `/etc/group`.
//!
//! Accepted specs: `""`, `name`, `uid`, `name:group`, `uid:gid`, `name:gid`, `uid:group`.
//!
//! * Empty user part: uid 0, with root's passwd entry (gid, home, groups) when there is one.
//! * A numeric user part is always a uid (a user named `1000` cannot be selected by name); it
//!   does not need a passwd entry (gid 0, home `/` then). A non-numeric one must exist in passwd.
//! * An explicit group is looked up in `/etc/group` (numeric = gid, else name); a numeric gid
//!   needs no entry. Without one, the gid comes from the passwd entry (0 when there is none).
//! * Supplementary groups: only in the implicit form (no `:group`) and only when the user was
//!   found in passwd, every group listing the user's name as a member, as runc does.
//! * [`ExecUser::groups`] are the supplementary groups, then `--group-add` (names or numbers),
//!   without duplicates: what BuildKit gives a RUN. [`ExecUser::additional_gids`] is what
//!   `docker run` passes to `setgroups`, as moby builds it: the primary gid first, then those.
//! * Numeric ids must lie in 0..=2147483647, like runc.

/// The identity a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// User id (real, effective and saved).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups from `/etc/group`, then `--group-add` groups; no duplicates.
    pub groups: Vec<u32>,
    /// Home directory from passwd, `/` when unknown or empty (the default for `HOME`).
    pub home: String,
}

impl ExecUser {
    /// Groups for `setgroups` as `docker run` sets them: the primary gid first, then
    /// [`ExecUser::groups`], without duplicates.
    pub fn additional_gids(&self) -> Vec<u32> {
        let mut v = vec![self.gid];
        v.extend(self.groups.iter().filter(|g| **g != self.gid));
        v
    }
}

/// Errors from resolving a user spec.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The user name is not in passwd (or the image has no passwd file).
    #[error("unable to find user `{user}`: {reason}")]
    UserNotFound {
        /// The user part of the spec.
        user: String,
        /// Why: no matching entry, or no passwd file.
        reason: &'static str,
    },
    /// The group name is not in the group file (or the image has no group file).
    #[error("unable to find group `{group}`{origin}: {reason}")]
    GroupNotFound {
        /// The group name as given.
        group: String,
        /// Empty for the spec's group, ` (--group-add)` for an additional group.
        origin: &'static str,
        /// Why: no matching entry, or no group file.
        reason: &'static str,
    },
    /// A numeric uid or gid outside 0..=2147483647.
    #[error(
        "invalid id `{id}` in {context}: uids and gids must be in range 0-{}",
        MAX_ID
    )]
    OutOfRange {
        /// The offending number as given.
        id: String,
        /// Where it came from: ``user spec `bob:-5` `` or `--group-add`.
        context: String,
    },
}

/// Largest accepted uid/gid (runc's limit).
const MAX_ID: i64 = i32::MAX as i64;

const NO_PASSWD_ENTRY: &str = "no matching entries in passwd file";
const NO_PASSWD_FILE: &str = "no passwd file in the image";
const NO_GROUP_ENTRY: &str = "no matching entries in group file";
const NO_GROUP_FILE: &str = "no group file in the image";

/// One usable line of `/etc/passwd` (`name:password:uid:gid:gecos:home:shell`).
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One usable line of `/etc/group` (`name:password:gid:member,member`).
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

impl GroupEntry<'_> {
    fn has_member(&self, user: &str) -> bool {
        self.members
            .split(',')
            .map(str::trim)
            .any(|m| !m.is_empty() && m == user)
    }
}

/// Non-blank, non-comment lines, trimmed.
fn content_lines(contents: &str) -> impl Iterator<Item = &str> {
    contents
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Parses passwd contents; lines without a valid numeric uid and gid are skipped (rather than
/// read as uid 0, which is what a lenient parser would make of them).
fn passwd_entries(contents: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    content_lines(contents).filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?.trim().parse().ok()?;
        let gid = fields.next()?.trim().parse().ok()?;
        let _gecos = fields.next();
        let home = fields.next().unwrap_or("");
        Some(PasswdEntry {
            name,
            uid,
            gid,
            home,
        })
    })
}

/// Parses group contents; lines without a valid numeric gid are skipped.
fn group_entries(contents: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    content_lines(contents).filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let gid = fields.next()?.trim().parse().ok()?;
        let members = fields.next().unwrap_or("");
        Some(GroupEntry { name, gid, members })
    })
}

/// A numeric id as runc's `strconv.Atoi` sees it (sign allowed; range checked separately).
fn numeric(arg: &str) -> Option<i64> {
    if arg.is_empty() {
        None
    } else {
        arg.parse().ok()
    }
}

/// Checks a numeric id against runc's range; `context` names its origin for the error.
fn in_range(n: i64, id: &str, context: impl FnOnce() -> String) -> Result<u32, UserError> {
    match u32::try_from(n) {
        Ok(id) if n <= MAX_ID => Ok(id),
        _ => Err(UserError::OutOfRange {
            id: id.to_string(),
            context: context(),
        }),
    }
}

/// Resolves a user spec against the image's passwd and group files (their contents; `None`
/// when the image has no such file) plus `--group-add` values, with docker's semantics (see the
/// module documentation).
pub fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
    extra_groups: &[String],
) -> Result<ExecUser, UserError> {
    // Like runc's parseLine: "user", "user:group"; anything after a second ':' is ignored.
    let mut parts = spec.split(':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let uid_arg = numeric(user_arg);
    let gid_arg = numeric(group_arg);

    let entry = passwd.and_then(|contents| {
        passwd_entries(contents).find(|u| {
            if user_arg.is_empty() {
                u.uid == 0
            } else if let Some(n) = uid_arg {
                i64::from(u.uid) == n
            } else {
                u.name == user_arg
            }
        })
    });

    let (uid, mut gid, home, matched_name) = match entry {
        Some(u) => (u.uid, u.gid, u.home, Some(u.name)),
        None if user_arg.is_empty() => (0, 0, "", None),
        None => {
            let n = uid_arg.ok_or_else(|| UserError::UserNotFound {
                user: user_arg.to_string(),
                reason: if passwd.is_some() {
                    NO_PASSWD_ENTRY
                } else {
                    NO_PASSWD_FILE
                },
            })?;
            (
                in_range(n, user_arg, || format!("user spec `{spec}`"))?,
                0,
                "",
                None,
            )
        }
    };

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() {
        let found = group.and_then(|contents| {
            group_entries(contents).find(|g| match gid_arg {
                Some(n) => i64::from(g.gid) == n,
                None => g.name == group_arg,
            })
        });
        gid = match found {
            Some(g) => g.gid,
            None => {
                let n = gid_arg.ok_or_else(|| UserError::GroupNotFound {
                    group: group_arg.to_string(),
                    origin: "",
                    reason: if group.is_some() {
                        NO_GROUP_ENTRY
                    } else {
                        NO_GROUP_FILE
                    },
                })?;
                in_range(n, group_arg, || format!("user spec `{spec}`"))?
            }
        };
    } else if let (Some(name), Some(contents)) = (matched_name, group) {
        supplementary.extend(
            group_entries(contents)
                .filter(|g| g.has_member(name))
                .map(|g| g.gid),
        );
    }

    let mut groups = Vec::new();
    let mut push = |g: u32| {
        if !groups.contains(&g) {
            groups.push(g);
        }
    };
    supplementary.into_iter().for_each(&mut push);
    for extra in extra_groups {
        push(additional_group(extra, group)?);
    }

    Ok(ExecUser {
        uid,
        gid,
        groups,
        home: if home.is_empty() {
            "/".to_string()
        } else {
            home.to_string()
        },
    })
}

/// Resolves one `--group-add` value: the first group whose name or gid (as written by the
/// group file) matches, else a plain number.
fn additional_group(arg: &str, group: Option<&str>) -> Result<u32, UserError> {
    let found = group.and_then(|contents| {
        group_entries(contents).find(|g| g.name == arg || g.gid.to_string() == arg)
    });
    if let Some(g) = found {
        return Ok(g.gid);
    }
    let n = numeric(arg).ok_or_else(|| UserError::GroupNotFound {
        group: arg.to_string(),
        origin: " (--group-add)",
        reason: if group.is_some() {
            NO_GROUP_ENTRY
        } else {
            NO_GROUP_FILE
        },
    })?;
    in_range(n, arg, || "--group-add".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/ash
bin:x:1:1:bin:/bin:/sbin/nologin
# a comment line

   
daemon:x:2:2:daemon:/sbin:/sbin/nologin
short
broken:x:notanumber:5:broken:/nope:/bin/sh
bob:x:1000:1000:Bob,,,:/home/bob:/bin/sh
alice:x:1001:100::/home/alice:/bin/sh
nohome:x:1002:1002
emptyhome:x:1003:1003:::/bin/sh
dup:x:1004:1004::/first:/bin/sh
dup:x:1005:1005::/second:/bin/sh
1234:x:4321:4321::/home/numeric:/bin/sh
nobody:x:65534:65534:nobody:/:/sbin/nologin
";

    const GROUP: &str = "\
root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
# wheel used to be 10
wheel:x:10:root, bob
users:x:100:
staff:x:50:bob,alice
bob:x:1000:
audio:x:29:alice
garbage:x:xx:bob
dialout:x:20:bobby
video:x:44
nogroup:x:65534:
";

    struct Case {
        spec: &'static str,
        extra: &'static [&'static str],
        uid: u32,
        gid: u32,
        gids: &'static [u32],
        home: &'static str,
    }

    fn check(cases: &[Case], passwd: Option<&str>, group: Option<&str>) {
        for c in cases {
            let extra: Vec<String> = c.extra.iter().map(|s| s.to_string()).collect();
            let got = resolve(c.spec, passwd, group, &extra);
            match got {
                Ok(got) => assert_eq!(
                    (got.uid, got.gid, got.additional_gids(), got.home.as_str()),
                    (c.uid, c.gid, c.gids.to_vec(), c.home),
                    "spec {:?} extra {:?}",
                    c.spec,
                    c.extra
                ),
                Err(err) => panic!(
                    "spec {:?} extra {:?}: unexpected error {err}",
                    c.spec, c.extra
                ),
            }
        }
    }

    fn error(spec: &str, passwd: Option<&str>, group: Option<&str>, extra: &[&str]) -> String {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        match resolve(spec, passwd, group, &extra) {
            Ok(user) => panic!("spec {spec:?}: expected an error, got {user:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn resolves_like_docker() {
        let cases = [
            // empty spec: root, with root's entry and groups listing "root"
            Case {
                spec: "",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0, 1, 2, 10],
                home: "/root",
            },
            Case {
                spec: "root",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0, 1, 2, 10],
                home: "/root",
            },
            Case {
                spec: "0",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0, 1, 2, 10],
                home: "/root",
            },
            Case {
                spec: "0:0",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0],
                home: "/root",
            },
            // by name: gid from passwd, supplementary groups by membership (whitespace tolerated)
            Case {
                spec: "bob",
                extra: &[],
                uid: 1000,
                gid: 1000,
                gids: &[1000, 10, 50],
                home: "/home/bob",
            },
            Case {
                spec: "alice",
                extra: &[],
                uid: 1001,
                gid: 100,
                gids: &[100, 50, 29],
                home: "/home/alice",
            },
            // by uid present in passwd: same as by name
            Case {
                spec: "1000",
                extra: &[],
                uid: 1000,
                gid: 1000,
                gids: &[1000, 10, 50],
                home: "/home/bob",
            },
            Case {
                spec: "+1000",
                extra: &[],
                uid: 1000,
                gid: 1000,
                gids: &[1000, 10, 50],
                home: "/home/bob",
            },
            // uid not in passwd: gid 0, home /
            Case {
                spec: "4242",
                extra: &[],
                uid: 4242,
                gid: 0,
                gids: &[0],
                home: "/",
            },
            Case {
                spec: "4242:4243",
                extra: &[],
                uid: 4242,
                gid: 4243,
                gids: &[4243],
                home: "/",
            },
            Case {
                spec: "4242:staff",
                extra: &[],
                uid: 4242,
                gid: 50,
                gids: &[50],
                home: "/",
            },
            // explicit group (name or number): no supplementary groups, as runc
            Case {
                spec: "bob:staff",
                extra: &[],
                uid: 1000,
                gid: 50,
                gids: &[50],
                home: "/home/bob",
            },
            Case {
                spec: "bob:29",
                extra: &[],
                uid: 1000,
                gid: 29,
                gids: &[29],
                home: "/home/bob",
            },
            Case {
                spec: "bob:777",
                extra: &[],
                uid: 1000,
                gid: 777,
                gids: &[777],
                home: "/home/bob",
            },
            Case {
                spec: "1000:users",
                extra: &[],
                uid: 1000,
                gid: 100,
                gids: &[100],
                home: "/home/bob",
            },
            // empty user with a group: root's entry, that group
            Case {
                spec: ":staff",
                extra: &[],
                uid: 0,
                gid: 50,
                gids: &[50],
                home: "/root",
            },
            Case {
                spec: ":",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0, 1, 2, 10],
                home: "/root",
            },
            // a third field is ignored
            Case {
                spec: "bob:staff:whatever",
                extra: &[],
                uid: 1000,
                gid: 50,
                gids: &[50],
                home: "/home/bob",
            },
            // a numeric user part is always a uid, never a name
            Case {
                spec: "1234",
                extra: &[],
                uid: 1234,
                gid: 0,
                gids: &[0],
                home: "/",
            },
            Case {
                spec: "4321",
                extra: &[],
                uid: 4321,
                gid: 4321,
                gids: &[4321],
                home: "/home/numeric",
            },
            // home: missing or empty field -> "/"
            Case {
                spec: "nohome",
                extra: &[],
                uid: 1002,
                gid: 1002,
                gids: &[1002],
                home: "/",
            },
            Case {
                spec: "emptyhome",
                extra: &[],
                uid: 1003,
                gid: 1003,
                gids: &[1003],
                home: "/",
            },
            // first matching entry wins
            Case {
                spec: "dup",
                extra: &[],
                uid: 1004,
                gid: 1004,
                gids: &[1004],
                home: "/first",
            },
            Case {
                spec: "1005",
                extra: &[],
                uid: 1005,
                gid: 1005,
                gids: &[1005],
                home: "/second",
            },
            // --group-add: names, numbers with and without entries, duplicates dropped
            Case {
                spec: "bob",
                extra: &["audio", "44", "9999", "staff", "0"],
                uid: 1000,
                gid: 1000,
                gids: &[1000, 10, 50, 29, 44, 9999, 0],
                home: "/home/bob",
            },
            Case {
                spec: "4242",
                extra: &["nogroup"],
                uid: 4242,
                gid: 0,
                gids: &[0, 65534],
                home: "/",
            },
            Case {
                spec: "nobody",
                extra: &[],
                uid: 65534,
                gid: 65534,
                gids: &[65534],
                home: "/",
            },
        ];
        check(&cases, Some(PASSWD), Some(GROUP));
    }

    #[test]
    fn missing_files() {
        let cases = [
            Case {
                spec: "",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0],
                home: "/",
            },
            Case {
                spec: "1000",
                extra: &[],
                uid: 1000,
                gid: 0,
                gids: &[0],
                home: "/",
            },
            Case {
                spec: "1000:1000",
                extra: &["5"],
                uid: 1000,
                gid: 1000,
                gids: &[1000, 5],
                home: "/",
            },
            Case {
                spec: "0:0",
                extra: &[],
                uid: 0,
                gid: 0,
                gids: &[0],
                home: "/",
            },
        ];
        check(&cases, None, None);
        check(&cases, Some(""), Some(""));
        // passwd present, group missing: no supplementary groups, no error
        let cases = [
            Case {
                spec: "bob",
                extra: &[],
                uid: 1000,
                gid: 1000,
                gids: &[1000],
                home: "/home/bob",
            },
            Case {
                spec: "bob:50",
                extra: &[],
                uid: 1000,
                gid: 50,
                gids: &[50],
                home: "/home/bob",
            },
        ];
        check(&cases, Some(PASSWD), None);
        // group present, passwd missing
        let cases = [Case {
            spec: "1000:staff",
            extra: &[],
            uid: 1000,
            gid: 50,
            gids: &[50],
            home: "/",
        }];
        check(&cases, None, Some(GROUP));
    }

    #[test]
    fn errors() {
        let p = Some(PASSWD);
        let g = Some(GROUP);
        // (spec, passwd, group, --group-add, expected message)
        type ErrorCase<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            &'a [&'a str],
            &'a str,
        );
        let cases: &[ErrorCase] = &[
            (
                "bob",
                Some(""),
                g,
                &[],
                "unable to find user `bob`: no matching entries in passwd file",
            ),
            (
                "carol",
                p,
                g,
                &[],
                "unable to find user `carol`: no matching entries in passwd file",
            ),
            (
                "bob",
                None,
                g,
                &[],
                "unable to find user `bob`: no passwd file in the image",
            ),
            (
                "carol:staff",
                p,
                g,
                &[],
                "unable to find user `carol`: no matching entries in passwd file",
            ),
            // malformed lines are never matched
            (
                "short",
                p,
                g,
                &[],
                "unable to find user `short`: no matching entries in passwd file",
            ),
            (
                "broken",
                p,
                g,
                &[],
                "unable to find user `broken`: no matching entries in passwd file",
            ),
            (
                "# a comment line",
                p,
                g,
                &[],
                "unable to find user `# a comment line`: no matching entries in passwd file",
            ),
            // names are case-sensitive
            (
                "Bob",
                p,
                g,
                &[],
                "unable to find user `Bob`: no matching entries in passwd file",
            ),
            (
                "bob:wheelz",
                p,
                g,
                &[],
                "unable to find group `wheelz`: no matching entries in group file",
            ),
            (
                "bob:garbage",
                p,
                g,
                &[],
                "unable to find group `garbage`: no matching entries in group file",
            ),
            (
                "1000:staff",
                p,
                None,
                &[],
                "unable to find group `staff`: no group file in the image",
            ),
            (
                "bob",
                p,
                g,
                &["nope"],
                "unable to find group `nope` (--group-add): no matching entries in group file",
            ),
            (
                "bob",
                p,
                None,
                &["audio"],
                "unable to find group `audio` (--group-add): no group file in the image",
            ),
            (
                "-1",
                p,
                g,
                &[],
                "invalid id `-1` in user spec `-1`: uids and gids must be in range 0-2147483647",
            ),
            (
                "2147483648",
                p,
                g,
                &[],
                "invalid id `2147483648` in user spec `2147483648`: uids and gids must be in range 0-2147483647",
            ),
            (
                "bob:-5",
                p,
                g,
                &[],
                "invalid id `-5` in user spec `bob:-5`: uids and gids must be in range 0-2147483647",
            ),
            (
                "bob",
                p,
                g,
                &["4294967296"],
                "invalid id `4294967296` in --group-add: uids and gids must be in range 0-2147483647",
            ),
            // too large for any integer: not numeric, so a (missing) name
            (
                "99999999999999999999",
                p,
                g,
                &[],
                "unable to find user `99999999999999999999`: no matching entries in passwd file",
            ),
        ];
        for (spec, passwd, group, extra, want) in cases {
            assert_eq!(error(spec, *passwd, *group, extra), *want, "spec {spec:?}");
        }
    }

    #[test]
    fn largest_id_is_accepted() {
        let cases = [Case {
            spec: "2147483647:2147483647",
            extra: &[],
            uid: 2147483647,
            gid: 2147483647,
            gids: &[2147483647],
            home: "/",
        }];
        check(&cases, Some(PASSWD), Some(GROUP));
    }

    #[test]
    fn tolerates_crlf_and_odd_lines() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\r\n\r\n::::\nzed:x:7:8:z:/z\r\n";
        let group = "\r\nwheel:x:10:zed\r\n:x:11:zed\nx\n";
        let cases = [Case {
            spec: "zed",
            extra: &[],
            uid: 7,
            gid: 8,
            gids: &[8, 10, 11],
            home: "/z",
        }];
        check(&cases, Some(passwd), Some(group));
    }
}
