//! The session: the settings every request of a download shares, one cookie
//! jar, and the transports (see [`crate::transport`]), used by the probe and
//! every worker of a download (and by several downloads, if the caller
//! wishes).
//!
//! Every request goes through [`Session::fetch`], whichever transport carries
//! it: the request's headers are assembled here (the user's, `User-Agent`,
//! `Accept`, `Accept-Encoding: identity`, URL credentials, the jar's
//! cookies), redirects are followed here, and every `Set-Cookie`, of a `302`
//! as of a `206`, is stored here, before the next hop is sent. Credentials
//! that the user set by hand (`Authorization`, `Proxy-Authorization`,
//! `Cookie`) are dropped when a redirect leaves the origin they were meant
//! for.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cookie_store::RawCookie;
use url::{Origin, Url};

use crate::cancel::Line;
use crate::cookies::{self, Jar, JarFormat};
use crate::error::Error;
use crate::http::{self, HeaderMap, HeaderName, HeaderValue};
use crate::transport::{
    self, Body, Head, ProxyChoice, Request, SendBody, Settings, Tls, Transport, Ureq, Wire,
};
use crate::urlparse;

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: u32 = 10;

/// The default `User-Agent`.
pub const DEFAULT_USER_AGENT: &str = concat!("rangeget/", env!("CARGO_PKG_VERSION"));

/// Headers that carry credentials, dropped on a redirect to another origin.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Which transport carries a session's requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// rangeget's own connections for plain `http://` without a proxy
    /// (kept alive, the body spliced into the file), ureq for the rest.
    #[default]
    Auto,
    /// ureq for every request: to compare, or where our own connections
    /// should not be used.
    Ureq,
}

/// A set of settings for a [`Session`]. Build one with [`Session::builder`].
#[derive(Clone, Debug)]
pub struct SessionBuilder {
    headers: Vec<(String, String)>,
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_connections: usize,
    tls: Tls,
    engine: Engine,
    proxy: ProxyChoice,
    no_proxy: Option<String>,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        SessionBuilder {
            headers: Vec::new(),
            user_agent: DEFAULT_USER_AGENT.to_string(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            max_connections: 64,
            tls: Tls::default(),
            engine: Engine::Auto,
            proxy: ProxyChoice::Env,
            no_proxy: None,
        }
    }
}

/// Checks that `name: value` can be sent as a header line.
fn check_header(name: &str, value: &str, what: &str) -> Result<(), Error> {
    if name.is_empty() || HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(Error::InvalidOption(format!(
            "{what} {:?} has an invalid name",
            http::clip(name)
        )));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(Error::InvalidOption(format!(
            "{what} {:?} has an invalid value (control characters or line breaks)",
            http::clip(value)
        )));
    }
    Ok(())
}

/// The certificates of PEM text.
fn parse_certs(pem: &[u8]) -> Result<Vec<::ureq::tls::Certificate<'static>>, String> {
    let mut certs = Vec::new();
    for item in ::ureq::tls::parse_pem(pem) {
        match item {
            Ok(::ureq::tls::PemItem::Certificate(c)) => certs.push(c.to_owned()),
            Ok(_) => {}
            Err(e) => return Err(format!("not a PEM certificate file: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

impl SessionBuilder {
    /// Adds a header sent with every request (`-H 'Name: value'`). A header of the
    /// same name that rangeget would send itself is replaced by this one, except
    /// `Range`, `If-Range` and `Accept-Encoding`, which downloads need as they are.
    /// A header that cannot be sent (a line break in the value) is left out
    /// of requests; [`SessionBuilder::header_line`] refuses it instead.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Parses `Name: value` (as curl's `-H`) and adds it.
    pub fn header_line(self, line: &str) -> Result<Self, Error> {
        let (name, value) = parse_header_line(line)?;
        Ok(self.header(name, value))
    }

    /// Sets the `User-Agent` (default `rangeget/VERSION`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Sets the `User-Agent`, refusing one that cannot be sent (a line break
    /// in it), as [`SessionBuilder::header_line`] refuses such headers.
    pub fn try_user_agent(self, ua: &str) -> Result<Self, Error> {
        check_header("User-Agent", ua, "user agent")?;
        Ok(self.user_agent(ua))
    }

    /// How long to wait for a connection (TCP and TLS) to be set up (default 15 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long a response head may take in all, and a connection may stay
    /// silent (or nearly so) in a body, before it counts as stalled (default
    /// 30 s).
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }

    /// The most connections that downloads in this session will open at once
    /// (sizes the idle pools and buffers; default 64).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The proxy to use (`--proxy`): `http://`, `https://`, `socks4://`,
    /// `socks4a://`, `socks5://` or `socks5h://` (the proxy resolves the
    /// names), credentials in the URL; an empty string: none. Without this,
    /// the first of `ALL_PROXY`, `HTTPS_PROXY` and `HTTP_PROXY` (or their
    /// lowercase) that is set. [`SessionBuilder::try_build`] checks the URL.
    pub fn proxy(mut self, url: &str) -> Self {
        self.proxy = ProxyChoice::Url(url.to_string());
        self
    }

    /// Hosts reached without the proxy, comma-separated (`--noproxy`):
    /// `example.com`, `.example.com` (its subdomains), `*` (every host).
    /// Without this, the environment's `NO_PROXY`; an empty string: none.
    pub fn no_proxy(mut self, list: &str) -> Self {
        self.no_proxy = Some(list.to_string());
        self
    }

    /// Which transport carries requests (default [`Engine::Auto`]).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Trusts the certificates of this PEM file (one or several) as the only
    /// roots for https, instead of the system's store (`--cacert`, as curl).
    pub fn ca_file(mut self, path: &Path) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|e| Error::io(path, "read the CA file", e))?;
        let certs = parse_certs(&pem)
            .map_err(|why| Error::InvalidOption(format!("{}: {why}", path.display())))?;
        self.tls.roots = Some(certs);
        Ok(self)
    }

    /// Trusts the certificates of this PEM text (one or several) as the only
    /// roots for https, instead of the system's store.
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let certs = parse_certs(pem)
            .map_err(|why| Error::InvalidOption(format!("CA certificates: {why}")))?;
        self.tls.roots = Some(certs);
        Ok(self)
    }

    /// Skips the verification of https certificates (`-k/--insecure`, as curl):
    /// the connection is encrypted but the server is not authenticated.
    pub fn insecure(mut self, yes: bool) -> Self {
        self.tls.insecure = yes;
        self
    }

    /// Builds the session with an empty cookie jar. A proxy URL that cannot
    /// be used is left out here; [`SessionBuilder::try_build`] refuses it.
    pub fn build(self) -> Session {
        let proxy = transport::proxy_from(&self.proxy, self.no_proxy.as_deref()).unwrap_or(None);
        self.build_with(proxy)
    }

    /// Builds the session, refusing a proxy URL that cannot be used.
    pub fn try_build(self) -> Result<Session, Error> {
        let proxy = transport::proxy_from(&self.proxy, self.no_proxy.as_deref())
            .map_err(Error::InvalidOption)?;
        Ok(self.build_with(proxy))
    }

    fn build_with(self, proxy: Option<::ureq::Proxy>) -> Session {
        let settings = Settings {
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            max_connections: self.max_connections,
        };
        // Headers that cannot be sent are left out rather than failing
        // every request (header_line refuses them up front).
        let headers = self
            .headers
            .into_iter()
            .filter(|(n, v)| check_header(n, v, "header").is_ok())
            .collect();
        let user_agent = if check_header("User-Agent", &self.user_agent, "").is_ok() {
            self.user_agent
        } else {
            DEFAULT_USER_AGENT.to_string()
        };
        Session {
            ureq: Arc::new(Ureq::new(&settings, &self.tls, proxy)),
            wire: Arc::new(Wire::new(settings)),
            engine: self.engine,
            jar: Arc::new(Mutex::new(Jar::new())),
            notes: Arc::default(),
            run_only: Arc::new(Mutex::new(Vec::new())),
            headers: Arc::new(headers),
            read_timeout: self.read_timeout,
            connect_timeout: self.connect_timeout,
            user_agent: Arc::from(user_agent.as_str()),
        }
    }
}

/// `Name: value` (as curl's `-H`), trimmed and checked as sendable.
fn parse_header_line(line: &str) -> Result<(String, String), Error> {
    let (name, value) = line.split_once(':').ok_or_else(|| {
        Error::InvalidOption(format!(
            "header {:?} is not of the form 'Name: value'",
            http::clip(line)
        ))
    })?;
    let (name, value) = (name.trim(), value.trim());
    check_header(name, value, "header")?;
    Ok((name.to_string(), value.to_string()))
}

/// Settings, transports and one cookie jar, cheap to clone: clones share the
/// connections and the jar.
#[derive(Clone)]
pub struct Session {
    ureq: Arc<Ureq>,
    wire: Arc<Wire>,
    engine: Engine,
    jar: Arc<Mutex<Jar>>,
    /// Notices for the user that the download passes on: what was said, and
    /// the hosts already told about.
    notes: Arc<Mutex<(Vec<String>, std::collections::HashSet<String>)>>,
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

/// A cookie of a session's jar, as [`Session::cookies`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The host it was set for (`example.com`), or the domain it applies to
    /// with its subdomains (`.example.com`).
    pub domain: String,
    /// The path it applies to.
    pub path: String,
    /// Sent over https only.
    pub secure: bool,
    /// Not for scripts (means nothing to a downloader; kept for the jar file).
    pub http_only: bool,
    /// When it expires, as a Unix time; `None` for a session cookie.
    pub expires: Option<i64>,
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
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// A response and the URL that gave it, after redirects.
pub(crate) struct Fetched {
    pub url: Url,
    pub head: Head,
    pub body: Box<dyn Body>,
    /// The transport that carried the last hop.
    pub transport: &'static str,
}

impl Session {
    /// Starts building a session.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// A session that shares this one's connections, cookie jar and
    /// settings, and sends `lines` (`Name: value`, as
    /// [`SessionBuilder::header_line`]) as well: one download of a list
    /// with headers of its own.
    pub fn with_headers(&self, lines: &[String]) -> Result<Session, Error> {
        let mut headers = (*self.headers).clone();
        for line in lines {
            headers.push(parse_header_line(line)?);
        }
        Ok(Session {
            headers: Arc::new(headers),
            ..self.clone()
        })
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

    /// The transport that carries requests to `url`: our own connections for
    /// plain http without a proxy (unless the session asks for ureq), ureq
    /// for the rest.
    pub(crate) fn transport_for(&self, url: &Url) -> &dyn Transport {
        if self.engine == Engine::Auto && url.scheme() == "http" && !self.ureq.proxied(url) {
            &*self.wire
        } else {
            &*self.ureq
        }
    }

    fn jar(&self) -> MutexGuard<'_, Jar> {
        // A worker that panicked while holding the lock cannot have left the jar
        // half-updated in a way that matters more than losing the cookies: use it.
        self.jar.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cookies in the jar (expired ones left out).
    pub fn cookies(&self) -> Vec<Cookie> {
        let jar = self.jar();
        jar.store()
            .iter_unexpired()
            .filter_map(|c| {
                let domain = match &c.domain {
                    cookie_store::CookieDomain::HostOnly(h) => h.clone(),
                    cookie_store::CookieDomain::Suffix(d) => format!(".{d}"),
                    _ => return None,
                };
                Some(Cookie {
                    name: c.name().to_string(),
                    value: c.value().to_string(),
                    domain,
                    path: c.path.to_string(),
                    secure: c.secure().unwrap_or(false),
                    http_only: c.http_only().unwrap_or(false),
                    expires: match c.expires {
                        cookie_store::CookieExpiration::AtUtc(t) => Some(t.unix_timestamp()),
                        cookie_store::CookieExpiration::SessionEnd => None,
                    },
                })
            })
            .collect()
    }

    /// Reads a cookie jar file (Netscape `cookies.txt` or JSON, detected) into
    /// this session's jar. A missing file is an empty jar; a file that cannot be
    /// parsed is an error naming the file and line.
    pub fn load(&self, path: &Path) -> Result<(), Error> {
        let loaded = cookies::read(path)?;
        self.jar().merge(&loaded);
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
            let jar = self.jar();
            match cookies::format_for(path) {
                JarFormat::Netscape => cookies::to_netscape(jar.store(), &skip),
                JarFormat::Json => cookies::to_json(jar.store(), &skip)?,
            }
        };
        cookies::write_private(path, &text)
    }

    /// Adds a cookie (`name=value`) for `url`'s host, for this run only: it is
    /// sent as the jar's other cookies are, and never saved.
    pub fn add_cookie(&self, url: &Url, name_value: &str) -> Result<(), Error> {
        let bad =
            |why: &str| Error::InvalidOption(format!("cookie {:?}: {why}", http::clip(name_value)));
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
        self.jar().insert(raw, url).map_err(|e| bad(&e))?;
        self.run_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((host.to_ascii_lowercase(), "/".to_string(), name.to_string()));
        Ok(())
    }

    /// `GET url`, following redirects, reading the body (at most 10 MiB).
    pub fn get(&self, url: &str) -> Result<Page, Error> {
        let url = http::parse_url(url)?;
        let f = self.fetch("GET", &url, &[], None, &url.origin(), &Line::detached())?;
        read_page(f)
    }

    /// Sends a form `POST` (`application/x-www-form-urlencoded`, built with
    /// [`urlparse::urlencode`]) and follows the redirects that answer it, as a
    /// browser does (`301`/`302`/`303` continue as `GET`): the way to log in
    /// before a download in the same session. Every `Set-Cookie` on the way,
    /// redirects included, lands in the jar.
    pub fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<Page, Error> {
        let url = http::parse_url(url)?;
        let form = urlparse::urlencode(fields);
        let body = SendBody {
            content_type: "application/x-www-form-urlencoded",
            bytes: form.as_bytes(),
        };
        let f = self.fetch(
            "POST",
            &url,
            &[],
            Some(body),
            &url.origin(),
            &Line::detached(),
        )?;
        read_page(f)
    }

    /// Sends `method url` with `extra` headers and an optional body, following up
    /// to [`MAX_REDIRECTS`] redirects, storing every `Set-Cookie` (redirects
    /// included) and sending the jar's cookies on every hop. The user's
    /// credential headers (`Authorization`, `Proxy-Authorization`, `Cookie`)
    /// go only to `credentials_for`, the origin the user named. Each hop's
    /// socket is attached to `line`. Any status is returned as a response:
    /// callers decide what an error is.
    pub(crate) fn fetch(
        &self,
        method: &str,
        url: &Url,
        extra: &[(&str, String)],
        mut body: Option<SendBody<'_>>,
        credentials_for: &Origin,
        line: &Line,
    ) -> Result<Fetched, Error> {
        let mut current = url.clone();
        let mut method = method.to_string();
        let mut visited = vec![current.clone()];
        loop {
            let headers = self.request_headers(&current, extra, credentials_for);
            let transport = self.transport_for(&current);
            let mut response = transport.send(&Request {
                method: &method,
                url: &current,
                headers: &headers,
                body,
                line,
            })?;
            self.store_cookies(&current, &response.head.headers);
            let status = response.head.status;
            let Some(location) = http::redirect_location(status, &response.head.headers) else {
                return Ok(Fetched {
                    url: current,
                    head: response.head,
                    body: response.body,
                    transport: transport.name(),
                });
            };
            let next = current.join(location).map_err(|e| {
                Error::protocol(
                    &current,
                    format!(
                        "redirect to an invalid Location {:?}: {e}",
                        http::clip(location)
                    ),
                )
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Error::protocol(
                    &current,
                    format!(
                        "redirect to unsupported scheme {:?}",
                        http::clip(next.scheme())
                    ),
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
            // A small redirect body is read so that its connection can serve
            // the next hop; a large one is dropped with its connection.
            let _ = transport::read_to_vec(&mut *response.body, 64 << 10);
            drop(response);
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

    /// Every header of a request to `url` but `Host`: `User-Agent`, `Accept`
    /// and `Accept-Encoding: identity` (unless the user's replace them),
    /// `Basic` credentials from the URL; the user's headers, except `Range`,
    /// `If-Range` and `Accept-Encoding` and, when `url` is not of the origin
    /// `credentials_for`, the credential headers; then `extra`; then the
    /// `Cookie` header (the user's own and the jar's).
    pub(crate) fn request_headers(
        &self,
        url: &Url,
        extra: &[(&str, String)],
        credentials_for: &Origin,
    ) -> Vec<(String, String)> {
        let cross_origin = url.origin() != *credentials_for;
        let mut user = Vec::new();
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
            user.push((name.clone(), value.clone()));
        }
        let has = |n: &str| user.iter().any(|(u, _)| u.eq_ignore_ascii_case(n));
        let mut out = Vec::with_capacity(user.len() + extra.len() + 5);
        if !has("user-agent") {
            out.push(("User-Agent".to_string(), self.user_agent.to_string()));
        }
        if !has("accept") {
            out.push(("Accept".to_string(), "*/*".to_string()));
        }
        // No compression: a compressed answer ignores Range.
        out.push(("Accept-Encoding".to_string(), "identity".to_string()));
        if !has("authorization")
            && let Some(basic) = http::basic_auth(url)
        {
            out.push(("Authorization".to_string(), basic));
        }
        out.extend(user);
        for (name, value) in extra {
            out.push((name.to_string(), value.clone()));
        }
        if let Some(cookie) = self.cookie_header(url, user_cookie) {
            out.push(("Cookie".to_string(), cookie));
        }
        out
    }

    /// The `Cookie` header for `url`: the user's own (same origin only), then
    /// the jar's matching cookies. `Secure` cookies go over https only, loopback
    /// included (cookie_store would send them to `http://127.0.0.1`, as browsers
    /// do; a redirect from https to http must never carry them).
    fn cookie_header(&self, url: &Url, user_cookie: Option<String>) -> Option<String> {
        let (values, dropped) = self.jar().header_values(url);
        if dropped > 0 {
            let host = url.host_str().unwrap_or_default();
            self.note_once(
                host,
                format!(
                    "{dropped} of the jar's cookies for {host} were not sent, the oldest: the Cookie header would be larger than {} bytes",
                    cookies::MAX_COOKIE_HEADER
                ),
            );
        }
        let mut parts: Vec<String> = user_cookie.into_iter().collect();
        parts.extend(values);
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Keeps a notice for the user, once per `topic`.
    fn note_once(&self, topic: &str, note: String) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        if notes.1.insert(topic.to_string()) {
            notes.0.push(note);
        }
    }

    /// The notices kept since the last call.
    pub(crate) fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.notes.lock().unwrap_or_else(|e| e.into_inner()).0)
    }

    /// Stores the `Set-Cookie` headers of an answer from `url` in the jar.
    fn store_cookies(&self, url: &Url, headers: &HeaderMap) {
        let values: Vec<&str> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return;
        }
        self.jar().store_response(url, values.into_iter());
    }
}

fn read_page(mut f: Fetched) -> Result<Page, Error> {
    let body = transport::read_to_vec(&mut *f.body, 10 << 20)
        .map_err(|e| transport::fail::broke(&f.url, e))?;
    Ok(Page {
        status: f.head.status,
        url: f.url,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &[(String, String)]) -> Vec<String> {
        h.iter().map(|(n, _)| n.to_ascii_lowercase()).collect()
    }

    #[test]
    fn one_set_of_headers_for_both_transports() {
        let url = Url::parse("http://ann:s3cret@127.0.0.1:8080/f").unwrap();
        let plain = Session::builder().build();
        let h = plain.request_headers(&url, &[("range", "bytes=0-9".into())], &url.origin());
        assert_eq!(
            names(&h),
            [
                "user-agent",
                "accept",
                "accept-encoding",
                "authorization",
                "range"
            ]
        );
        assert!(h.contains(&("Authorization".into(), "Basic YW5uOnMzY3JldA==".into())));
        // A User-Agent, Accept or Authorization of the user's replaces ours;
        // Accept-Encoding stays identity.
        let custom = Session::builder()
            .header("User-Agent", "me/1")
            .header("Authorization", "Bearer x")
            .header("Accept-Encoding", "gzip")
            .build();
        let h = custom.request_headers(&url, &[], &url.origin());
        assert_eq!(
            names(&h),
            ["accept", "accept-encoding", "user-agent", "authorization"]
        );
        assert!(h.contains(&("Accept-Encoding".into(), "identity".into())));
        // Another origin gets no credentials of the user's.
        let other = Url::parse("http://127.0.0.1:9/f").unwrap();
        let h = custom.request_headers(&other, &[], &url.origin());
        assert!(!names(&h).contains(&"authorization".to_string()), "{h:?}");
    }

    #[test]
    fn unsendable_agents_and_headers_are_refused() {
        assert!(Session::builder().try_user_agent("x\r\ny").is_err());
        assert!(Session::builder().header_line("X-A: b\rc").is_err());
        let s = Session::builder().user_agent("bad\nagent").build();
        assert_eq!(s.user_agent(), DEFAULT_USER_AGENT);
    }
}
