//! Following redirects (RFC 9110 section 15.4): which responses are followed, and
//! how the next request differs from the one that was redirected.
//!
//! 301, 302 and 303 turn the request into a GET without a body (a HEAD stays a
//! HEAD); 307 and 308 repeat it as it was. `Location` is resolved against the URL
//! that answered, so a relative reference keeps its own query. When the redirect
//! leads to another origin, credentials (`Authorization`, `Cookie`,
//! `Proxy-Authorization`) are not sent there. The limit on the number of redirects is
//! the caller's.

use http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION,
    PROXY_AUTHORIZATION, TRANSFER_ENCODING,
};
use http::{HeaderMap, Method, StatusCode};

use super::origin::Outgoing;
#[cfg(test)]
use super::origin::Payload;

/// The most redirects one request follows.
pub(crate) const MAX_REDIRECTS: usize = 10;

fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Rewrites `request` to follow the response (`status`, `headers`) it got. Returns
/// false, leaving `request` alone, when that response is not a redirect to follow:
/// not a redirect status, or no `Location` that resolves to an http(s) URL.
pub(crate) fn follow(request: &mut Outgoing, status: StatusCode, headers: &HeaderMap) -> bool {
    let keeps_request = match status.as_u16() {
        301..=303 => false,
        307 | 308 => true,
        _ => return false,
    };
    let Some(location) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(next) = request.url.join(location) else {
        return false;
    };
    if !matches!(next.scheme(), "http" | "https") {
        return false;
    }
    if !keeps_request {
        request.body = None;
        for name in [
            CONTENT_TYPE,
            CONTENT_LENGTH,
            CONTENT_ENCODING,
            TRANSFER_ENCODING,
        ] {
            request.headers.remove(name);
        }
        if request.method != Method::HEAD {
            request.method = Method::GET;
        }
    }
    if !same_origin(&request.url, &next) {
        for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
            request.headers.remove(name);
        }
        request.headers.remove("cookie2");
    }
    request.url = next;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn outgoing(url: &str, method: Method) -> Outgoing {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        Outgoing {
            url: url::Url::parse(url).unwrap(),
            method,
            headers,
            body: Some(Payload::Bytes(Bytes::from_static(b"data"))),
        }
    }

    fn location(to: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LOCATION, to.parse().unwrap());
        headers
    }

    #[test]
    fn see_other_becomes_a_get_without_body_but_head_stays_head() {
        let mut post = outgoing("http://a.test/x", Method::POST);
        assert!(follow(&mut post, StatusCode::SEE_OTHER, &location("/y")));
        assert_eq!(post.method, Method::GET);
        assert!(post.body.is_none());
        assert!(post.headers.get(CONTENT_TYPE).is_none());
        let mut head = outgoing("http://a.test/x", Method::HEAD);
        assert!(follow(&mut head, StatusCode::FOUND, &location("/y")));
        assert_eq!(head.method, Method::HEAD);
    }

    #[test]
    fn temporary_and_permanent_keep_method_and_body() {
        let mut put = outgoing("http://a.test/x", Method::PUT);
        assert!(follow(
            &mut put,
            StatusCode::PERMANENT_REDIRECT,
            &location("/y")
        ));
        assert_eq!(put.method, Method::PUT);
        assert!(matches!(&put.body, Some(Payload::Bytes(b)) if &b[..] == b"data"));
    }

    #[test]
    fn relative_locations_resolve_and_keep_their_query() {
        let mut get = outgoing("http://a.test/dir/page?old=1", Method::GET);
        assert!(follow(
            &mut get,
            StatusCode::FOUND,
            &location("next?kept=yes")
        ));
        assert_eq!(get.url.as_str(), "http://a.test/dir/next?kept=yes");
        assert!(get.headers.get(AUTHORIZATION).is_some(), "same origin");
    }

    #[test]
    fn credentials_stay_behind_on_another_origin() {
        let mut get = outgoing("http://a.test/", Method::GET);
        assert!(follow(
            &mut get,
            StatusCode::MOVED_PERMANENTLY,
            &location("http://a.test:8080/")
        ));
        assert!(get.headers.get(AUTHORIZATION).is_none(), "another port");
    }

    #[test]
    fn non_redirects_and_unusable_locations_are_not_followed() {
        let mut get = outgoing("http://a.test/", Method::GET);
        assert!(!follow(&mut get, StatusCode::OK, &location("/y")));
        assert!(!follow(&mut get, StatusCode::FOUND, &HeaderMap::new()));
        assert!(!follow(
            &mut get,
            StatusCode::FOUND,
            &location("ftp://b.test/")
        ));
        assert_eq!(get.url.as_str(), "http://a.test/");
    }
}
