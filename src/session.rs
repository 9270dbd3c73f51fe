//! The session: one `ureq::Agent` and one cookie jar, shared by the probe and
//! every worker of a download (and by several downloads, if the caller wishes).
//!
//! Redirects are followed here, not by ureq, so that every hop sees the jar: the
//! `Set-Cookie` of a `302` is stored before the next hop is sent, and the next
//! hop gets the cookies that the jar holds for *its* URL. Credentials that the
//! user set by hand (`Authorization`, `Cookie`) are dropped when a redirect
//! leaves the origin they were meant for.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cookie_store::{CookieStore, RawCookie};
use ureq::Agent;
use ureq::http::{self, Response};
use url::{Origin, Url};

use crate::cookies::{self, JarFormat};
use crate::error::Error;
use crate::urlparse;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: u32 = 10;

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("rangeget/", env!("CARGO_PKG_VERSION"));

/// Headers that carry credentials, dropped on a redirect to another origin.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// A set of settings for a [`Session`]. Build one with [`Session::builder`].
#[derive(Clone, Debug)]
pub struct SessionBuilder {
    headers: Vec<(String, String)>,
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_connections: usize,
    ca_certs: Option<Vec<ureq::tls::Certificate<'static>>>,
    insecure: bool,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        SessionBuilder {
            headers: Vec::new(),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            max_connections: 64,
            ca_certs: None,
            insecure: false,
        }
    }
}

impl SessionBuilder {
    /// Adds a header sent with every request (`-H 'Name: value'`). A header of the
    /// same name that rangeget would send itself is replaced by this one, except
    /// `Range`, `If-Range` and `Accept-Encoding`, which downloads need as they are.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Parses `Name: value` (as curl's `-H`) and adds it.
    pub fn header_line(self, line: &str) -> Result<Self, Error> {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            Error::InvalidOption(format!("header {line:?} is not of the form 'Name: value'"))
        })?;
        let name = name.trim();
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(Error::InvalidOption(format!(
                "header {line:?} has an invalid name"
            )));
        }
        let value = value.trim();
        if http::HeaderValue::from_str(value).is_err() {
            return Err(Error::InvalidOption(format!(
                "header {line:?} has an invalid value"
            )));
        }
        Ok(self.header(name, value))
    }

    /// Sets the `User-Agent` (default `rangeget/VERSION`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// How long to wait for a connection (TCP and TLS) to be set up (default 15 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long a connection may stay silent, waiting for headers or body bytes,
    /// before it counts as stalled (default 30 s).
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }

    /// The most connections that downloads in this session will open at once
    /// (sizes the idle pool so that none is thrown away; default 64).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Trusts the certificates of this PEM file (one or several) as the only
    /// roots for https, instead of the system's store (`--cacert`, as curl).
    pub fn ca_file(mut self, path: &Path) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|e| Error::io(path, "read the CA file", e))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::InvalidOption(format!(
                        "{}: not a PEM certificate file: {e}",
                        path.display()
                    )));
                }
            }
        }
        if certs.is_empty() {
            return Err(Error::InvalidOption(format!(
                "{}: holds no PEM certificate",
                path.display()
            )));
        }
        self.ca_certs = Some(certs);
        Ok(self)
    }

    /// Skips the verification of https certificates (`-k/--insecure`, as curl):
    /// the connection is encrypted but the server is not authenticated.
    pub fn insecure(mut self, yes: bool) -> Self {
        self.insecure = yes;
        self
    }

    /// Builds the session with an empty cookie jar.
    pub fn build(self) -> Session {
        // The system's trust store by default, as curl and wget use it.
        let roots = match &self.ca_certs {
            Some(certs) => ureq::tls::RootCerts::new_with_certs(certs),
            None => ureq::tls::RootCerts::PlatformVerifier,
        };
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(self.insecure)
            .build();
        let config = Agent::config_builder()
            // We follow redirects ourselves so that every hop sees the jar.
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(self.user_agent.as_str())
            // No gzip: a compressed answer ignores Range. Identity only.
            .accept_encoding("identity")
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_per_read(Some(self.read_timeout))
            // Bigger reads cost less per byte (measured: 1 MiB against 256 KiB
            // cut CPU by about 15 % on a 1 GiB download), within a memory budget.
            .input_buffer_size(crate::worker::buffer_size(self.max_connections))
            .max_idle_connections_per_host(self.max_connections + 4)
            .max_idle_connections(2 * self.max_connections + 8)
            .tls_config(tls)
            .build();
        Session {
            agent: Agent::new_with_config(config),
            jar: Arc::new(Mutex::new(CookieStore::new())),
            run_only: Arc::new(Mutex::new(Vec::new())),
            headers: Arc::new(self.headers),
            read_timeout: self.read_timeout,
            connect_timeout: self.connect_timeout,
            user_agent: Arc::from(self.user_agent.as_str()),
        }
    }
}

/// One agent (connection pool, timeouts, TLS) and one cookie jar, cheap to clone:
/// clones share both.
#[derive(Clone)]
pub struct Session {
    agent: Agent,
    jar: Arc<Mutex<CookieStore>>,
    /// Cookies added for this run only, `(domain, path, name)`: never saved.
    run_only: Arc<Mutex<Vec<(String, String, String)>>>,
    headers: Arc<Vec<(String, String)>>,
    read_timeout: Duration,
    connect_timeout: Duration,
    user_agent: Arc<str>,
}

/// A small response read whole: what [`Session::get`] and
/// [`Session::post_form`] return.
#[derive(Clone, Debug)]
pub struct Page {
    /// The final status.
    pub status: u16,
    /// The URL that answered, after redirects.
    pub url: Url,
    /// The body (at most 10 MiB are read).
    pub body: Vec<u8>,
}

impl Page {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request body and its content type.
pub(crate) struct Body<'a> {
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

impl Default for Session {
    fn default() -> Self {
        Session::builder().build()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// A response and the URL that gave it, after redirects.
pub(crate) struct Fetched {
    pub url: Url,
    pub response: Response<ureq::Body>,
}

impl Session {
    /// Starts building a session.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// How long a connection may stay silent (or nearly so) before it counts
    /// as stalled.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// How long a connection may take to be set up.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The `User-Agent` sent (unless a header of the user's replaces it).
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The agent (shared by every clone of this session).
    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The cookie jar, locked. Do not hold the guard across a request.
    pub fn cookies(&self) -> MutexGuard<'_, CookieStore> {
        // A worker that panicked while holding the lock cannot have left the jar
        // half-updated in a way that matters more than losing the cookies: use it.
        self.jar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads a cookie jar file (Netscape `cookies.txt` or JSON, detected) into
    /// this session's jar. A missing file is an empty jar; a file that cannot be
    /// parsed is an error naming the file and line.
    pub fn load(&self, path: &Path) -> Result<(), Error> {
        let loaded = cookies::read(path)?;
        cookies::merge(&mut self.cookies(), &loaded);
        Ok(())
    }

    /// Saves the jar to `path` (mode 0600, atomically), in the format the file
    /// already has, else JSON for a `.json` name and Netscape `cookies.txt`
    /// otherwise. Session cookies are kept, expired ones and cookies added with
    /// [`Session::add_cookie`] are not.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let run_only = self
            .run_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let skip = |c: &cookie_store::Cookie<'static>| {
            let path: &str = &c.path;
            cookies::cookie_host(c).is_some_and(|host| {
                run_only
                    .iter()
                    .any(|(d, p, n)| d == host && p == path && n == c.name())
            })
        };
        let text = {
            let jar = self.cookies();
            match cookies::format_for(path) {
                JarFormat::Netscape => cookies::to_netscape(&jar, &skip),
                JarFormat::Json => cookies::to_json(&jar, &skip)?,
            }
        };
        cookies::write_private(path, &text)
    }

    /// Adds a cookie (`name=value`) for `url`'s host, for this run only: it is
    /// sent as the jar's other cookies are, and never saved.
    pub fn add_cookie(&self, url: &Url, name_value: &str) -> Result<(), Error> {
        let bad = |why: &str| Error::InvalidOption(format!("cookie {name_value:?}: {why}"));
        let (name, value) = name_value
            .split_once('=')
            .ok_or_else(|| bad("not of the form name=value"))?;
        let name = name.trim();
        if name.is_empty() || name.contains([';', ' ', '\t']) {
            return Err(bad("invalid name"));
        }
        let host = url.host_str().ok_or_else(|| bad("the URL has no host"))?;
        let raw = RawCookie::build((name.to_string(), value.trim().to_string()))
            .path("/")
            .build();
        self.cookies()
            .insert_raw(&raw, url)
            .map_err(|e| bad(&e.to_string()))?;
        self.run_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((host.to_ascii_lowercase(), "/".to_string(), name.to_string()));
        Ok(())
    }

    /// `GET url`, following redirects, reading the body (at most 10 MiB).
    pub fn get(&self, url: &str) -> Result<Page, Error> {
        let url = crate::parse_url(url)?;
        let f = self.send("GET", &url, &[], &url.origin())?;
        read_page(f)
    }

    /// Sends a form `POST` (`application/x-www-form-urlencoded`, built with
    /// [`urlparse::urlencode`]) and follows the redirects that answer it, as a
    /// browser does (`301`/`302`/`303` continue as `GET`): the way to log in
    /// before a download in the same session. Every `Set-Cookie` on the way,
    /// redirects included, lands in the jar.
    pub fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<Page, Error> {
        let url = crate::parse_url(url)?;
        let form = urlparse::urlencode(fields);
        let body = Body {
            content_type: "application/x-www-form-urlencoded",
            bytes: form.as_bytes(),
        };
        let f = self.send_with_body("POST", &url, &[], Some(body), &url.origin())?;
        read_page(f)
    }

    /// Sends `method url` with `extra` headers: see [`Session::send_with_body`].
    pub(crate) fn send(
        &self,
        method: &str,
        url: &Url,
        extra: &[(&str, String)],
        credentials_for: &Origin,
    ) -> Result<Fetched, Error> {
        self.send_with_body(method, url, extra, None, credentials_for)
    }

    /// Sends `method url` with `extra` headers and an optional body, following up
    /// to [`MAX_REDIRECTS`] redirects, storing every `Set-Cookie` (redirects
    /// included) and sending the jar's cookies on every hop. The user's
    /// credential headers (`Authorization`, `Proxy-Authorization`, `Cookie`)
    /// go only to `credentials_for`, the origin the user named. Any status is
    /// returned as a response: callers decide what an error is.
    pub(crate) fn send_with_body(
        &self,
        method: &str,
        url: &Url,
        extra: &[(&str, String)],
        mut body: Option<Body<'_>>,
        credentials_for: &Origin,
    ) -> Result<Fetched, Error> {
        let mut current = url.clone();
        let mut method = method.to_string();
        let mut visited = vec![current.clone()];
        loop {
            let mut req = http::Request::builder()
                .method(method.as_str())
                .uri(current.as_str());
            for (name, value) in self.request_headers(&current, extra, credentials_for) {
                req = req.header(name, value);
            }
            let bad = |e: http::Error| Error::InvalidUrl {
                url: current.to_string(),
                reason: e.to_string(),
            };
            let response = match &body {
                Some(b) => {
                    let req = req
                        .header("content-type", b.content_type)
                        .body(b.bytes)
                        .map_err(bad)?;
                    self.agent.run(req)
                }
                None => self.agent.run(req.body(()).map_err(bad)?),
            }
            .map_err(|e| Error::network(&current, &e))?;
            self.store_cookies(&current, response.headers());

            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok(Fetched {
                    url: current,
                    response,
                });
            }
            let Some(location) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            else {
                // A 3xx without Location is a final answer.
                return Ok(Fetched {
                    url: current,
                    response,
                });
            };
            let next = current.join(location).map_err(|e| {
                Error::protocol(
                    &current,
                    format!("redirect to an invalid Location {location:?}: {e}"),
                )
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Error::protocol(
                    &current,
                    format!("redirect to unsupported scheme {:?}", next.scheme()),
                ));
            }
            if visited.contains(&next) {
                return Err(Error::RedirectLoop {
                    url: next.to_string(),
                    via: visited.len(),
                });
            }
            if visited.len() > MAX_REDIRECTS as usize {
                return Err(Error::TooManyRedirects {
                    url: url.to_string(),
                    limit: MAX_REDIRECTS,
                });
            }
            // As browsers do: a 303 (and a 301/302 answering a POST) continues as GET.
            if (status == 303 && method != "HEAD")
                || (matches!(status, 301 | 302) && method == "POST")
            {
                method = "GET".to_string();
                body = None;
            }
            visited.push(next.clone());
            current = next;
        }
    }

    /// The headers of a request to `url`, beyond those the HTTP layer adds
    /// (`Host`, `User-Agent`, `Accept-Encoding`): the user's headers, except
    /// `Range`, `If-Range` and `Accept-Encoding` and, when `url` is not of the
    /// origin `credentials_for`, the credential headers; then `extra`; then the
    /// `Cookie` header (the user's own and the jar's).
    pub(crate) fn request_headers(
        &self,
        url: &Url,
        extra: &[(&str, String)],
        credentials_for: &Origin,
    ) -> Vec<(String, String)> {
        let cross_origin = url.origin() != *credentials_for;
        let mut out = Vec::new();
        let mut user_cookie = None;
        for (name, value) in self.headers.iter() {
            let lower = name.to_ascii_lowercase();
            if matches!(lower.as_str(), "range" | "if-range" | "accept-encoding") {
                continue;
            }
            if CREDENTIAL_HEADERS.contains(&lower.as_str()) && cross_origin {
                continue;
            }
            if lower == "cookie" {
                user_cookie = Some(value.clone());
                continue;
            }
            out.push((name.clone(), value.clone()));
        }
        for (name, value) in extra {
            out.push((name.to_string(), value.clone()));
        }
        if let Some(cookie) = self.cookie_header(url, user_cookie) {
            out.push(("cookie".to_string(), cookie));
        }
        out
    }

    /// The `Cookie` header for `url`: the user's own (same origin only), then
    /// the jar's matching cookies. `Secure` cookies go over https only, loopback
    /// included (cookie_store would send them to `http://127.0.0.1`, as browsers
    /// do; a redirect from https to http must never carry them).
    fn cookie_header(&self, url: &Url, user_cookie: Option<String>) -> Option<String> {
        let jar = self.cookies();
        let https = url.scheme() == "https";
        let mut parts: Vec<String> = user_cookie.into_iter().collect();
        parts.extend(
            jar.matches(url)
                .into_iter()
                .filter(|c| https || !c.secure().unwrap_or(false))
                .map(|c| format!("{}={}", c.name(), c.value())),
        );
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Stores the `Set-Cookie` headers of an answer from `url` in the jar.
    pub(crate) fn store_cookies(&self, url: &Url, headers: &http::HeaderMap) {
        let values: Vec<&str> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return;
        }
        let mut jar = self.cookies();
        for v in values {
            // A cookie the jar refuses (bad domain, malformed) is ignored, as browsers do.
            let _ = jar.parse(v, url);
        }
    }
}

fn read_page(f: Fetched) -> Result<Page, Error> {
    let status = f.response.status().as_u16();
    let mut body = Vec::new();
    f.response
        .into_body()
        .into_reader()
        .take(10 << 20)
        .read_to_end(&mut body)
        .map_err(|e| Error::Network {
            url: f.url.to_string(),
            reason: format!("connection broke: {e}"),
            transient: true,
        })?;
    Ok(Page {
        status,
        url: f.url,
        body,
    })
}
