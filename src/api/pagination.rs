//! GitLab's offset pagination: `page` and `per_page` in, `X-Page`, `X-Per-Page`,
//! `X-Next-Page`, `X-Prev-Page`, `X-Total`, `X-Total-Pages` and `Link` out.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::error::ApiError;

pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub per_page: i64,
}

impl Page {
    /// GitLab clamps `per_page` to 1..=100 and treats a page below 1 as 1.
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Page, ApiError> {
        let page = page.unwrap_or(1).max(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
        if page > 1_000_000 {
            return Err(ApiError::BadRequest("page is too large".into()));
        }
        Ok(Page { page, per_page })
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// The pagination headers for a list of `total` items served at `url` (the request's
    /// absolute URL without `page`/`per_page`).
    pub fn headers(
        &self,
        total: i64,
        base_url: &str,
        other_params: &[(String, String)],
    ) -> HeaderMap {
        let total_pages = ((total + self.per_page - 1) / self.per_page).max(1);
        let mut h = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        let next = (self.page < total_pages).then_some(self.page + 1);
        let prev = (self.page > 1).then_some(self.page - 1);
        put("x-page", self.page.to_string());
        put("x-per-page", self.per_page.to_string());
        put("x-total", total.to_string());
        put("x-total-pages", total_pages.to_string());
        put(
            "x-next-page",
            next.map(|n| n.to_string()).unwrap_or_default(),
        );
        put(
            "x-prev-page",
            prev.map(|n| n.to_string()).unwrap_or_default(),
        );
        let link = |page: i64, rel: &str| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in other_params {
                query.append_pair(k, v);
            }
            query.append_pair("page", &page.to_string());
            query.append_pair("per_page", &self.per_page.to_string());
            format!("<{base_url}?{}>; rel=\"{rel}\"", query.finish())
        };
        let mut links = Vec::new();
        if let Some(p) = prev {
            links.push(link(p, "prev"));
        }
        if let Some(n) = next {
            links.push(link(n, "next"));
        }
        links.push(link(1, "first"));
        links.push(link(total_pages, "last"));
        put("link", links.join(", "));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_like_gitlab() {
        assert_eq!(
            Page::new(Some(0), Some(1000)).unwrap(),
            Page {
                page: 1,
                per_page: 100
            }
        );
        assert_eq!(
            Page::new(None, None).unwrap(),
            Page {
                page: 1,
                per_page: 20
            }
        );
    }

    #[test]
    fn headers_link_to_neighbours() {
        let h = Page::new(Some(2), Some(2))
            .unwrap()
            .headers(5, "http://x/api/v4/users", &[]);
        assert_eq!(h["x-next-page"], "3");
        assert_eq!(h["x-prev-page"], "1");
        assert_eq!(h["x-total-pages"], "3");
        let link = h["link"].to_str().unwrap();
        assert!(
            link.contains("<http://x/api/v4/users?page=3&per_page=2>; rel=\"next\""),
            "{link}"
        );
        let last = Page::new(Some(3), Some(2))
            .unwrap()
            .headers(5, "http://x", &[]);
        assert_eq!(last["x-next-page"], "");
    }
}
