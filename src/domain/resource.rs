//! RFC 8707 resource indicators: the `resource` parameters of an authorization or token
//! request, naming the protected resources a token is meant for (its audience).

/// Resources accepted in one request at most (our bound; RFC 8707 sets none).
const MAX_RESOURCES: usize = 10;
/// Longest resource URI accepted.
const MAX_LEN: usize = 2000;

/// A set of resource URIs, in the order first named, without repeats. Empty means the
/// request named none, which behaves as before RFC 8707 (no audience restriction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources(Vec<String>);

impl Resources {
    /// The `resource` values of a request. RFC 8707 §2: each an absolute URI without a
    /// fragment; issue 13: `http` or `https`. `Err` is the `invalid_target` description.
    pub fn parse(values: &[&str]) -> Result<Resources, String> {
        let mut out: Vec<String> = Vec::new();
        for value in values {
            check(value)?;
            if !out.iter().any(|r| r == value) {
                out.push((*value).to_string());
            }
        }
        if out.len() > MAX_RESOURCES {
            return Err(format!(
                "At most {MAX_RESOURCES} resources may be requested."
            ));
        }
        Ok(Resources(out))
    }

    /// As stored: space-separated (a URI holds no space), NULL for none.
    pub fn from_stored(text: Option<&str>) -> Resources {
        Resources(
            text.unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }

    /// The column value: `None` when empty.
    pub fn stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.join(" "))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, uri: &str) -> bool {
        self.0.iter().any(|r| r == uri)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// RFC 8707 §2.2: the resources a token request names must be among those of the
    /// authorization (none named: all of them).
    pub fn narrow(&self, requested: &Resources) -> Result<Resources, String> {
        if requested.is_empty() {
            return Ok(self.clone());
        }
        match requested.iter().find(|r| !self.contains(r)) {
            Some(other) => Err(format!(
                "The resource {other} was not part of the authorization."
            )),
            None => Ok(requested.clone()),
        }
    }
}

fn check(value: &str) -> Result<(), String> {
    let bad =
        || format!("The resource {value:?} is not an absolute http(s) URI without a fragment.");
    if value.is_empty()
        || value.len() > MAX_LEN
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
        || value.contains('#')
    {
        return Err(bad());
    }
    let url = url::Url::parse(value).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_http_uris_without_fragments_only() {
        let r = Resources::parse(&[
            "https://mcp.example/mcp",
            "http://127.0.0.1:8000/mcp",
            "https://mcp.example/mcp",
        ])
        .unwrap();
        assert_eq!(
            r.stored().as_deref(),
            Some("https://mcp.example/mcp http://127.0.0.1:8000/mcp")
        );
        assert_eq!(Resources::from_stored(r.stored().as_deref()), r);
        assert_eq!(Resources::from_stored(None), Resources::default());
        for bad in [
            "/relative",
            "urn:x:y",
            "https://a.example/#f",
            "ftp://a.example/",
            "https://a b/",
            "",
            "https://u@a.example/",
            "https://a.example/\u{0}",
        ] {
            assert!(Resources::parse(&[bad]).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..11).map(|i| format!("https://r{i}.example/")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(Resources::parse(&many).is_err());
    }

    #[test]
    fn a_token_request_narrows_within_the_authorization() {
        let granted = Resources::parse(&["https://a.example/", "https://b.example/"]).unwrap();
        let b = Resources::parse(&["https://b.example/"]).unwrap();
        assert_eq!(granted.narrow(&b).unwrap(), b);
        assert_eq!(granted.narrow(&Resources::default()).unwrap(), granted);
        let c = Resources::parse(&["https://c.example/"]).unwrap();
        assert!(granted.narrow(&c).is_err());
        assert!(
            Resources::default().narrow(&c).is_err(),
            "none authorized, none may be named"
        );
    }
}
