//! A page that only says something: the answer to a mailed-link request, a confirmation, a
//! sign-up waiting for approval. One template (`message.html`), one way to fill it.

use axum::http::StatusCode;
use axum::response::Response;

use super::{WebError, page_with_status};
use crate::state::AppState;

/// What a message page says, and where its one link goes.
pub struct Message<'a> {
    pub title: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub link: Option<(&'a str, &'a str)>,
}

impl<'a> Message<'a> {
    pub fn notice(title: &'a str, notice: &'a str) -> Self {
        Message {
            title,
            notice: Some(notice),
            error: None,
            link: None,
        }
    }

    pub fn error(title: &'a str, error: &'a str) -> Self {
        Message {
            title,
            notice: None,
            error: Some(error),
            link: None,
        }
    }

    /// Adds the link (`href`, text).
    pub fn link(mut self, href: &'a str, text: &'a str) -> Self {
        self.link = Some((href, text));
        self
    }

    /// The page, with `status`, for a signed-out visitor.
    pub fn render(self, state: &AppState, status: StatusCode) -> Response {
        let (link_href, link_text) = self.link.unzip();
        let page = state.templates.render(
            "message.html",
            minijinja::context! {
                title => self.title,
                current_user => (),
                csrf_token => "",
                notice => self.notice,
                error => self.error,
                link_href,
                link_text,
            },
        );
        page_with_status(status, page.map_err(|e: WebError| e))
    }
}
