//! Model names and semantic versions: validation and precedence, shared by every front end.

use std::cmp::Ordering;

/// Whether `v` is a semantic version `MAJOR.MINOR.PATCH[-pre][+build]`.
///
/// ```
/// assert!(ingot::is_semver("1.2.3-rc.1+build5"));
/// assert!(!ingot::is_semver("1.2"));
/// ```
pub fn is_semver(v: &str) -> bool {
    let (core, rest) = match v.find(['-', '+']) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0'))
    };
    let ident_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let tail_ok = match rest.strip_prefix('-') {
        Some(pre) => match pre.split_once('+') {
            Some((p, b)) => ident_ok(p) && ident_ok(b),
            None => ident_ok(pre),
        },
        None => rest.strip_prefix('+').is_none_or(ident_ok),
    };
    parts.len() == 3 && parts.iter().all(numeric) && tail_ok
}

/// Whether `name` is a valid model name, `[A-Za-z0-9._-]{1,128}`, so it is safe in a URL.
///
/// ```
/// assert!(ingot::is_model_name("breast-cancer_v2.1"));
/// assert!(!ingot::is_model_name("a/b"));
/// ```
pub fn is_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The parts of a semantic version that order it: numeric core and pre-release identifiers.
type SemverKey<'a> = ((u64, u64, u64), Option<&'a str>);

/// Parses `MAJOR.MINOR.PATCH[-pre][+build]`; `None` if `v` is not one.
fn semver_key(v: &str) -> Option<SemverKey<'_>> {
    if !is_semver(v) {
        return None;
    }
    let without_build = v.split_once('+').map_or(v, |(core, _)| core);
    let (core, pre) = match without_build.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (without_build, None),
    };
    let mut parts = core.split('.').map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(((major, minor, patch), pre))
}

/// Orders two versions by semantic-version precedence (numeric MAJOR.MINOR.PATCH, then a
/// release above its pre-releases, pre-release identifiers compared per semver.org §11).
/// Versions that are not semantic versions sort below all others; ties (differing only in build
/// metadata) fall back to plain string order so the result is total.
///
/// ```
/// use std::cmp::Ordering;
/// assert_eq!(ingot::compare_versions("1.10.0", "1.9.0"), Ordering::Greater);
/// assert_eq!(ingot::compare_versions("1.0.0-rc.1", "1.0.0"), Ordering::Less);
/// ```
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let ord = match (semver_key(a), semver_key(b)) {
        (Some((ca, pa)), Some((cb, pb))) => ca.cmp(&cb).then_with(|| match (pa, pb) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(pa), Some(pb)) => compare_pre_release(pa, pb),
        }),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    };
    ord.then_with(|| a.cmp(b))
}

fn compare_pre_release(a: &str, b: &str) -> Ordering {
    let mut ia = a.split('.');
    let mut ib = b.split('.');
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(nx), Ok(ny)) => nx.cmp(&ny),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare_versions("2.0.0", "10.0.0"), Ordering::Less);
        assert_eq!(compare_versions("1.0.0", "1.0.0-rc.1"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0-rc.2", "1.0.0-rc.10"), Ordering::Less);
        assert_eq!(compare_versions("1.0.0-alpha", "1.0.0-alpha.1"), Ordering::Less);
        assert_eq!(compare_versions("1.0.0-1", "1.0.0-alpha"), Ordering::Less);
        assert_eq!(compare_versions("1.0.0", "1.0.0"), Ordering::Equal);
        assert_eq!(compare_versions("0.0.1", "latest"), Ordering::Greater);
    }

    #[test]
    fn sorted_highest_last() {
        let mut v = vec!["1.10.0", "1.2.0", "1.9.3", "1.10.0-rc.1", "0.9.0"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["0.9.0", "1.2.0", "1.9.3", "1.10.0-rc.1", "1.10.0"]);
    }

    #[test]
    fn model_names() {
        assert!(is_model_name("breast-cancer_v2.1"));
        assert!(!is_model_name(""));
        assert!(!is_model_name("a b"));
        assert!(!is_model_name("a/b"));
        assert!(!is_model_name(&"x".repeat(129)));
    }
}
