//! Huoban's H5 experience: the customer pages, the web components and the `huoban.js` SDK,
//! all plain files under `assets/` (ES modules, CSS, JSON locales; no build step).
//!
//! In production the files are embedded in the binary ([`rust_embed`]), compressed once per
//! process (brotli and gzip) and served under content-hashed names
//! (`/h5/assets/huoban.3f9c0a1b2c.js`) with `Cache-Control: public, max-age=31536000,
//! immutable`. Pages (`/h5/`, `/h5/goal`, …) are served `no-cache`; each carries an import
//! map from every stable asset URL (`/h5/assets/huoban.js`) to its hashed URL, so modules
//! import each other by stable relative names and the browser still fetches hashed files.
//! The stable URLs also answer (`no-cache`, with an `ETag`), for a bank's own H5 that
//! imports a component without the map.
//!
//! Each page comes in one variant per language, carrying that language's strings inline (a
//! JSON data block, not a script; only the namespaces the page's HTML and modules name), so
//! a first load needs no separate request for them. The
//! variant is picked from the `huoban.locale` cookie the SDK keeps in step with the
//! customer's choice, else from the first `Accept-Language` tag (as the SDK reads
//! `navigator.language`), else zh-CN. Each page's import map lists only the modules its own
//! graph imports (statically or with `import()`) and the locales, and its
//! Content-Security-Policy allows exactly its two inline scripts by hash.
//!
//! With [`Web::from_dir`] (config `web.assets_dir`) every request reads the files from disk,
//! uncompressed, so an edit shows on the next reload.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Once, OnceLock},
};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Embedded;

/// The pages, by the path segment they answer at under `/h5/` (`""` is the campaign hub).
pub const PAGES: &[(&str, &str)] = &[
    ("", "hub"),
    ("signin", "signin"),
    ("goal", "goal"),
    ("checkin", "checkin"),
    ("quiz", "quiz"),
    ("rewards", "rewards"),
    ("inbox", "inbox"),
    ("accounts", "accounts"),
    ("tasks", "tasks"),
    ("invite", "invite"),
    ("team", "team"),
    ("gallery", "gallery"),
];

/// The page languages; the first is the default. Their strings are `locales/{locale}.json`.
pub const LOCALES: &[&str] = &["zh-CN", "zh-TW", "en"];

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// Inline in every page's head, after the import map: starts the requests the page makes
/// first (the customer's profile, the API reads the page names in
/// `<meta name="huoban-early" content="/api/v1/… …">`, and the strings when the page's
/// inline ones are of another language) while the modules are still downloading; the SDK
/// picks them up (`__huobanEarly`). One round trip less on a slow network. The profile is
/// asked first: it is what the page waits for before it is interactive. The page's strings
/// come after this script and the links (so the browser finds those first), in the language
/// of `<html lang>`; they are fetched only when the customer's saved language differs.
const EARLY: &str = "window.__huobanEarly=(function(){try{var s=localStorage,t=s.getItem('huoban.token'),\
n=navigator.language||'zh-CN',l=s.getItem('huoban.locale')||(/^en/.test(n)?'en':/TW|HK|Hant/i.test(n)?'zh-TW':'zh-CN'),\
m=JSON.parse(document.querySelector('script[type=importmap]').textContent).imports,\
u=m['/h5/assets/locales/'+l+'.json'],p=location.pathname,x=document.querySelector('meta[name=huoban-early]'),a={},\
g=function(q){return fetch(q,{headers:{accept:'application/json',authorization:'Bearer '+t}})},\
me=t&&p!=='/h5/signin'&&p!=='/h5/gallery'?g('/api/v1/me'):null;\
if(t&&x)x.content.split(' ').forEach(function(q){if(q)a[q]=g(q)});\
return{locale:l,token:t,me:me,api:a,strings:document.documentElement.lang===l?null:u?fetch(u).then(function(r){return r.json()}):null}}\
catch(e){return null}})();";

/// One file, ready to serve.
#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    /// Stable path under `assets/`, e.g. `components/goal-progress.js`.
    path: String,
    /// `huoban.<10 hex>.js`-style path under `assets/`.
    hashed: String,
    etag: String,
    raw: Vec<u8>,
    br: Option<Vec<u8>>,
    gzip: Option<Vec<u8>>,
}

/// Every asset, by stable and by hashed path, and the rendered pages.
#[derive(Debug, Default)]
struct Table {
    assets: Vec<Asset>,
    by_path: BTreeMap<String, usize>,
    by_hashed: BTreeMap<String, usize>,
    pages: BTreeMap<String, Page>,
}

/// One page, rendered once per language.
#[derive(Debug)]
struct Page {
    /// Indexed like [`LOCALES`].
    variants: Vec<Asset>,
    /// Scripts from this origin plus the two inline ones the page carries (its import map
    /// and the early fetch), by their SHA-256.
    csp: String,
}

/// The H5 assets and pages; cheap to clone.
#[derive(Debug, Clone)]
pub struct Web {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Embedded,
    Dir(PathBuf),
}

/// The embedded files, scripts and stylesheets without their comment lines (fewer bytes
/// on a slow network; the sources keep them).
fn embedded_files() -> Vec<(String, Vec<u8>)> {
    Embedded::iter()
        .filter_map(|name| {
            Embedded::get(&name).map(|f| {
                let raw = f.data.into_owned();
                let raw = if name.ends_with(".js") || name.ends_with(".css") {
                    strip_comment_lines(&String::from_utf8_lossy(&raw), name.ends_with(".js")).into_bytes()
                } else {
                    raw
                };
                (name.to_string(), raw)
            })
        })
        .collect()
}

/// Drops whole-line comments: lines that start with `//` (scripts) and `/* … */` blocks that
/// start a line and end one. Nothing inside a multi-line template literal is touched (an
/// odd number of backticks so far on kept lines means we are inside one), and nothing that
/// shares a line with code, so no string or regular expression can be cut.
fn strip_comment_lines(source: &str, script: bool) -> String {
    let mut out = String::with_capacity(source.len());
    let mut in_template = false;
    let mut in_block = false;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim();
        if in_block {
            in_block = !trimmed.ends_with("*/");
            continue;
        }
        if !in_template {
            if script && trimmed.starts_with("//") {
                continue;
            }
            if trimmed.starts_with("/*") {
                in_block = !(trimmed.ends_with("*/") && trimmed.len() >= 4);
                continue;
            }
        }
        if script && line.bytes().filter(|b| *b == b'`').count() % 2 == 1 {
            in_template = !in_template;
        }
        out.push_str(line);
    }
    out
}

/// The embedded assets, hashed but not compressed: served until [`COMPRESSED`] is ready.
static RAW: LazyLock<Arc<Table>> = LazyLock::new(|| Arc::new(Table::build(embedded_files(), false)));

/// The same assets with their brotli and gzip bodies, built once per process on a
/// background thread (brotli at its best quality takes a moment) so a starting server
/// answers at once.
static COMPRESSED: OnceLock<Arc<Table>> = OnceLock::new();
static COMPRESSING: Once = Once::new();

fn embedded_table() -> Arc<Table> {
    COMPRESSED.get().cloned().unwrap_or_else(|| RAW.clone())
}

fn compress_in_background() {
    COMPRESSING.call_once(|| {
        let spawned = std::thread::Builder::new().name("h5-compress".into()).spawn(|| {
            let started = std::time::Instant::now();
            let table = Arc::new(Table::build(embedded_files(), true));
            tracing::debug!(
                assets = table.assets.len(),
                ms = started.elapsed().as_millis() as u64,
                "H5 assets compressed"
            );
            let _ = COMPRESSED.set(table);
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "H5 assets are served uncompressed");
        }
    });
}

impl Web {
    /// The assets embedded in the binary, compressed once per process (in the background;
    /// until then they are served uncompressed).
    pub fn embedded() -> Web {
        LazyLock::force(&RAW);
        compress_in_background();
        Web {
            source: Source::Embedded,
        }
    }

    /// Waits until the compressed copies are ready (tests, benchmarks).
    pub fn wait_compressed(&self) {
        compress_in_background();
        while COMPRESSED.get().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Development: read `dir` (a copy of `crates/web/assets`) on every request.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Web {
        Web {
            source: Source::Dir(dir.into()),
        }
    }

    /// `dir` when given, else the embedded assets.
    pub fn new(dir: Option<&Path>) -> Web {
        match dir {
            Some(d) => Web::from_dir(d),
            None => Web::embedded(),
        }
    }

    fn table(&self) -> Arc<Table> {
        match &self.source {
            Source::Embedded => embedded_table(),
            Source::Dir(dir) => {
                let mut files = Vec::new();
                read_dir(dir, dir, &mut files);
                Arc::new(Table::build(files, false))
            }
        }
    }

    /// The hashed URL of a stable asset path (`huoban.js` → `/h5/assets/huoban.<hash>.js`).
    pub fn asset_url(&self, path: &str) -> Option<String> {
        let t = self.table();
        t.by_path
            .get(path)
            .map(|&i| format!("/h5/assets/{}", t.assets[i].hashed))
    }

    /// Routes: the pages under `/h5/` and the assets under `/h5/assets/`.
    pub fn router(self) -> Router {
        Router::new()
            .route("/h5", get(|| async { Redirect::permanent("/h5/") }))
            .route("/h5/", get(hub))
            .route("/h5/{page}", get(page))
            .route("/h5/assets/{*path}", get(asset))
            .with_state(self)
    }
}

fn read_dir(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_dir(root, &path, out);
        } else if let (Ok(rel), Ok(bytes)) = (path.strip_prefix(root), std::fs::read(&path)) {
            out.push((rel.to_string_lossy().replace('\\', "/"), bytes));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "md" => "text/markdown; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn hashed_name(path: &str, hash: &str) -> String {
    match path.rfind('.') {
        Some(dot) if !path[dot..].contains('/') => format!("{}.{hash}{}", &path[..dot], &path[dot..]),
        _ => format!("{path}.{hash}"),
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type.starts_with("application/json") || content_type.contains("svg")
}

fn brotli(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 3);
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        let _ = w.write_all(raw);
    }
    out
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = w.write_all(raw);
    w.finish().unwrap_or_default()
}

impl Asset {
    fn new(path: String, hashed: String, etag: String, raw: Vec<u8>, compress: bool) -> Asset {
        let content_type = content_type(&path);
        let (br, gzip) = if compress && compressible(content_type) && raw.len() > 256 {
            let br = brotli(&raw);
            let gz = gzip(&raw);
            (
                (br.len() < raw.len()).then_some(br),
                (gz.len() < raw.len()).then_some(gz),
            )
        } else {
            (None, None)
        };
        Asset {
            content_type,
            path,
            hashed,
            etag,
            raw,
            br,
            gzip,
        }
    }
}

impl Table {
    fn build(files: Vec<(String, Vec<u8>)>, compress: bool) -> Table {
        let mut table = Table::default();
        let mut page_sources = Vec::new();
        for (path, raw) in files {
            if let Some(name) = path.strip_prefix("pages/").and_then(|p| p.strip_suffix(".html")) {
                page_sources.push((name.to_owned(), raw));
                continue;
            }
            let digest = Sha256::digest(&raw);
            let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
            let hashed = hashed_name(&path, &hash);
            let asset = Asset::new(path.clone(), hashed.clone(), format!("\"{hash}\""), raw, compress);
            let i = table.assets.len();
            table.assets.push(asset);
            table.by_path.insert(path, i);
            table.by_hashed.insert(hashed, i);
        }
        let locales: Vec<Vec<(String, String)>> = LOCALES.iter().map(|l| table.locale_strings(l)).collect();
        for (name, raw) in page_sources {
            let module = format!("js/{name}.js");
            let (map, head) = table.head(&module);
            let source = String::from_utf8_lossy(&raw);
            let used = table.namespaces(&module, &source);
            let strings: Vec<String> = LOCALES
                .iter()
                .zip(&locales)
                .map(|(locale, all)| inline_strings(locale, all, &used))
                .collect();
            let mut variants = Vec::with_capacity(LOCALES.len());
            for (locale, strings) in LOCALES.iter().zip(&strings) {
                let html = source
                    .replacen("<html lang=\"zh-CN\">", &format!("<html lang=\"{locale}\">"), 1)
                    .replace("<!--huoban:head-->", &format!("{head}{strings}"));
                let html = table.link_assets(&html);
                let digest = Sha256::digest(html.as_bytes());
                let etag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                variants.push(Asset::new(
                    format!("{name}.html"),
                    String::new(),
                    format!("\"{etag}\""),
                    html.into_bytes(),
                    compress,
                ));
            }
            let csp = page_csp(&[&map, EARLY]);
            table.pages.insert(name, Page { variants, csp });
        }
        table
    }

    /// A locale's strings, in the file's order.
    fn locale_strings(&self, locale: &str) -> Vec<(String, String)> {
        self.by_path
            .get(&format!("locales/{locale}.json"))
            .and_then(|&i| {
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&self.assets[i].raw).ok()
            })
            .map(|map| {
                map.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The string namespaces (`goal` of `goal.remaining`) a page can show: those its HTML
    /// or any module of its graph (`import()` included) names in a literal that starts a key
    /// (`"goal.`, `'goal.`, `` `goal. ``), as `t("goal.none")`, `t("account.type." + type)`
    /// and `data-t="goal.deposit"` do. The page carries only these strings inline, so a
    /// component's strings cost nothing to the pages that do not show it (the hub's first
    /// load stays small); switching language later loads the whole file.
    fn namespaces(&self, page_module: &str, html: &str) -> std::collections::BTreeSet<String> {
        let mut sources = vec![html.to_owned()];
        for module in self.graph(page_module, true) {
            if let Some(&i) = self.by_path.get(&module) {
                sources.push(String::from_utf8_lossy(&self.assets[i].raw).into_owned());
            }
        }
        let mut found = std::collections::BTreeSet::new();
        for source in &sources {
            let bytes = source.as_bytes();
            for (at, quote) in source.char_indices().filter(|(_, c)| matches!(c, '"' | '\'' | '`')) {
                let rest = &bytes[at + quote.len_utf8()..];
                let len = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
                    .count();
                if len > 0 && rest.get(len) == Some(&b'.') {
                    found.insert(String::from_utf8_lossy(&rest[..len]).into_owned());
                }
            }
        }
        found
    }

    /// The page's import map (each module of its graph and each locale: stable URL → hashed
    /// URL; the SDK looks locales up there too), the early fetch, the stylesheet and
    /// `modulepreload` links for the modules it imports statically, so the browser fetches
    /// the whole static graph at once instead of one level per round trip. Modules it
    /// imports with `import()` are mapped but not preloaded: they load after the page is
    /// interactive. Returns the map (for the CSP hash) and the head.
    fn head(&self, page_module: &str) -> (String, String) {
        let statics = self.graph(page_module, false);
        let all = self.graph(page_module, true);
        let locales = LOCALES.iter().map(|l| format!("locales/{l}.json"));
        let imports: Vec<String> = all
            .into_iter()
            .chain(locales)
            .filter_map(|p| self.by_path.get(&p))
            .map(|&i| {
                format!(
                    "\"/h5/assets/{}\":\"/h5/assets/{}\"",
                    self.assets[i].path, self.assets[i].hashed
                )
            })
            .collect();
        let map = format!("{{\"imports\":{{{}}}}}", imports.join(","));
        let css = self.hashed_url("huoban.css");
        let preloads: String = statics
            .iter()
            .filter(|p| self.by_path.contains_key(p.as_str()))
            .map(|p| format!("<link rel=\"modulepreload\" href=\"{}\">", self.hashed_url(p)))
            .collect();
        let head = format!(
            "<script type=\"importmap\">{map}</script><script>{EARLY}</script>\
<link rel=\"stylesheet\" href=\"{css}\">{preloads}"
        );
        (map, head)
    }

    /// A page module and the modules it imports, transitively: static imports only, or
    /// `import()` too. The SDK first (it is every page's first dependency).
    fn graph(&self, page_module: &str, dynamic: bool) -> Vec<String> {
        let mut seen = vec![page_module.to_owned()];
        let mut i = 0;
        while i < seen.len() {
            if let Some(&a) = self.by_path.get(&seen[i]) {
                let source = String::from_utf8_lossy(&self.assets[a].raw).into_owned();
                let mut deps = imports(&seen[i], &source);
                if dynamic {
                    deps.extend(dynamic_imports(&seen[i], &source));
                }
                for dep in deps {
                    if !seen.contains(&dep) && self.by_path.contains_key(&dep) {
                        seen.push(dep);
                    }
                }
            }
            i += 1;
        }
        if let Some(sdk) = seen.iter().position(|p| p == "huoban.js") {
            let sdk = seen.remove(sdk);
            seen.insert(0, sdk);
        }
        seen
    }

    fn hashed_url(&self, path: &str) -> String {
        match self.by_path.get(path) {
            Some(&i) => format!("/h5/assets/{}", self.assets[i].hashed),
            None => format!("/h5/assets/{path}"),
        }
    }

    /// `{{asset:path}}` in a page → the asset's hashed URL.
    fn link_assets(&self, html: &str) -> String {
        let mut out = String::with_capacity(html.len());
        let mut rest = html;
        while let Some(start) = rest.find("{{asset:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 8..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            out.push_str(&self.hashed_url(&after[..end]));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// The modules `source` (at `path` under `assets/`) imports statically, as paths under
/// `assets/`: `import … from "../x.js"` and `import "./y.js"`.
fn imports(path: &str, source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let line = line.trim_start();
        if !line.starts_with("import ") {
            continue;
        }
        let Some(spec) = line.rsplit(['"', '\'']).nth(1) else {
            continue;
        };
        if let Some(p) = resolve(path, spec) {
            found.push(p);
        }
    }
    found
}

/// The modules `source` loads with `import("../x.js")` (a literal relative specifier).
fn dynamic_imports(path: &str, source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("import(") {
        rest = &rest[at + 7..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else { break };
        if let Some(p) = resolve(path, &rest[1..1 + end]) {
            found.push(p);
        }
    }
    found
}

/// A relative specifier (`./x.js`, `../y.js`) from the module at `path`, as a path under
/// `assets/`; `None` for anything else.
fn resolve(path: &str, spec: &str) -> Option<String> {
    if !(spec.starts_with("./") || spec.starts_with("../")) {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

/// The language of the page variant to serve: the `huoban.locale` cookie (the SDK keeps it
/// equal to the saved choice), else the first `Accept-Language` tag read as the SDK reads
/// `navigator.language` (`en…` → en; `…TW`, `…HK`, `…Hant` → zh-TW; else zh-CN). An index
/// into [`LOCALES`].
fn page_locale(headers: &HeaderMap) -> usize {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "huoban.locale")
        .and_then(|(_, value)| LOCALES.iter().position(|l| *l == value.trim()));
    if let Some(i) = cookie {
        return i;
    }
    let first = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|tag| tag.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    let upper = first.to_ascii_uppercase();
    let name = if upper.starts_with("EN") {
        "en"
    } else if upper.contains("TW") || upper.contains("HK") || upper.contains("HANT") {
        "zh-TW"
    } else {
        "zh-CN"
    };
    LOCALES.iter().position(|l| *l == name).unwrap_or(0)
}

async fn hub(State(web): State<Web>, headers: HeaderMap) -> Response {
    serve_page(&web, "", &headers)
}

async fn page(State(web): State<Web>, UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
    serve_page(&web, &name, &headers)
}

fn serve_page(web: &Web, segment: &str, headers: &HeaderMap) -> Response {
    let Some((_, name)) = PAGES.iter().find(|(s, _)| *s == segment) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let table = web.table();
    let Some(page) = table.pages.get(*name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(variant) = page.variants.get(page_locale(headers)).or(page.variants.first()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = respond(variant, headers, NO_CACHE, PAGE_VARY);
    if let Ok(csp) = HeaderValue::from_str(&page.csp) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// A locale's strings of the namespaces in `used`, as a JSON data block for a page's
/// `<head>` (not a script: the browser does not run it, so the page's CSP needs no hash for
/// it). `<` is escaped so no string can close the element.
fn inline_strings(locale: &str, all: &[(String, String)], used: &std::collections::BTreeSet<String>) -> String {
    let strings: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .filter(|(key, _)| used.contains(key.split('.').next().unwrap_or("")))
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let json = serde_json::Value::Object(strings).to_string();
    format!(
        "<script type=\"application/json\" id=\"huoban-strings\" data-locale=\"{locale}\">{}</script>",
        json.replace('<', "\\u003c")
    )
}

/// The page policy: like the server's default, with the inline scripts allowed by hash
/// (no `'unsafe-inline'`).
fn page_csp(inline_scripts: &[&str]) -> String {
    use base64::Engine as _;
    let hashes: Vec<String> = inline_scripts
        .iter()
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'self'; script-src 'self' {}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        hashes.join(" ")
    )
}

async fn asset(State(web): State<Web>, UrlPath(path): UrlPath<String>, headers: HeaderMap) -> Response {
    let table = web.table();
    if let Some(&i) = table.by_hashed.get(&path) {
        let cache = if matches!(web.source, Source::Dir(_)) {
            NO_CACHE
        } else {
            IMMUTABLE
        };
        return respond(&table.assets[i], &headers, cache, "accept-encoding");
    }
    if let Some(&i) = table.by_path.get(&path) {
        return respond(&table.assets[i], &headers, NO_CACHE, "accept-encoding");
    }
    StatusCode::NOT_FOUND.into_response()
}

fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case(coding) && !q_zero
        })
}

/// Pages differ by language (cookie, `Accept-Language`) as well as by encoding.
const PAGE_VARY: &str = "accept-encoding, accept-language, cookie";

fn respond(asset: &Asset, headers: &HeaderMap, cache: &'static str, vary: &'static str) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut builder = Response::builder()
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, vary)
        .header(header::ETAG, asset.etag.as_str())
        .header("x-content-type-options", "nosniff");
    if not_modified {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    builder = builder.header(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    let (body, coding) = match (&asset.br, &asset.gzip) {
        (Some(br), _) if accepts(headers, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(headers, "gzip") => (gz, Some("gzip")),
        _ => (&asset.raw, None),
    };
    if let Some(c) = coding {
        builder = builder.header(header::CONTENT_ENCODING, c);
    }
    builder.body(Body::from(body.clone())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(web: &Web, uri: &str, enc: &str) -> Response {
        web.clone()
            .router()
            .oneshot(
                Request::get(uri)
                    .header(header::ACCEPT_ENCODING, enc)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response")
    }

    fn header_of(r: &Response, name: header::HeaderName) -> String {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable_and_precompressed() {
        let web = Web::embedded();
        web.wait_compressed();
        let url = web.asset_url("huoban.js").expect("sdk embedded");
        assert!(
            url.starts_with("/h5/assets/huoban.") && url.ends_with(".js") && url.len() > 25,
            "{url}"
        );
        let r = get(&web, &url, "gzip, deflate, br").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header_of(&r, header::CONTENT_ENCODING), "br");
        assert_eq!(header_of(&r, header::CACHE_CONTROL), IMMUTABLE);
        assert!(header_of(&r, header::CONTENT_TYPE).starts_with("text/javascript"));
        let r = get(&web, &url, "gzip").await;
        assert_eq!(header_of(&r, header::CONTENT_ENCODING), "gzip");
        let r = get(&web, &url, "identity").await;
        assert_eq!(header_of(&r, header::CONTENT_ENCODING), "");
        // The stable name answers too, but must be revalidated.
        let r = get(&web, "/h5/assets/huoban.js", "br").await;
        assert_eq!(header_of(&r, header::CACHE_CONTROL), NO_CACHE);
        assert_eq!(
            get(&web, "/h5/assets/nope.js", "br").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn pages_are_no_cache_and_link_hashed_assets_through_an_import_map() {
        let web = Web::embedded();
        for (segment, _) in PAGES {
            let r = get(&web, &format!("/h5/{segment}"), "identity").await;
            assert_eq!(r.status(), StatusCode::OK, "page /h5/{segment}");
            assert_eq!(header_of(&r, header::CACHE_CONTROL), NO_CACHE);
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.expect("body");
            let html = String::from_utf8_lossy(&body);
            assert!(html.contains("<script type=\"importmap\">"), "{segment}");
            assert!(html.contains(&web.asset_url("huoban.css").expect("css")), "{segment}");
            assert!(!html.contains("{{asset:"), "{segment}");
            if *segment == "goal" {
                let component = web.asset_url("components/goal-progress.js").expect("component");
                assert!(
                    html.contains(&format!("<link rel=\"modulepreload\" href=\"{component}\">")),
                    "{html}"
                );
            }
        }
        assert_eq!(get(&web, "/h5/nope", "br").await.status(), StatusCode::NOT_FOUND);
    }

    async fn body_of(r: Response) -> String {
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }

    async fn page_with(web: &Web, uri: &str, headers: &[(header::HeaderName, &str)]) -> Response {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        web.clone()
            .router()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response")
    }

    #[tokio::test]
    async fn a_page_carries_the_strings_of_the_cookie_or_browser_language() {
        let web = Web::embedded();
        let lang = |html: &str| {
            let marker = "id=\"huoban-strings\" data-locale=\"";
            let at = html.find(marker).expect("inline strings") + marker.len();
            html[at..at + html[at..].find('"').expect("end")].to_owned()
        };
        for (headers, want) in [
            (vec![], "zh-CN"),
            (vec![(header::ACCEPT_LANGUAGE, "en-US,en;q=0.9")], "en"),
            (vec![(header::ACCEPT_LANGUAGE, "zh-TW,zh;q=0.9")], "zh-TW"),
            (vec![(header::ACCEPT_LANGUAGE, "zh-Hant-HK")], "zh-TW"),
            (vec![(header::ACCEPT_LANGUAGE, "fr-FR,en;q=0.5")], "zh-CN"),
            // The cookie the SDK keeps wins over the browser's language; junk is ignored.
            (
                vec![
                    (header::ACCEPT_LANGUAGE, "en"),
                    (header::COOKIE, "a=1; huoban.locale=zh-TW"),
                ],
                "zh-TW",
            ),
            (
                vec![(header::ACCEPT_LANGUAGE, "en"), (header::COOKIE, "huoban.locale=xx")],
                "en",
            ),
        ] {
            let r = page_with(&web, "/h5/tasks", &headers).await;
            assert!(
                header_of(&r, header::VARY).contains("cookie"),
                "the page varies by language"
            );
            let html = body_of(r).await;
            assert_eq!(lang(&html), want, "{headers:?}");
            assert!(html.contains(&format!("<html lang=\"{want}\">")), "{want}");
            // The strings are the locale file's, as JSON, and cannot close the element.
            let start = html.find("data-locale=").expect("block");
            let json = &html[html[start..].find('>').expect("open") + start + 1..];
            let json = &json[..json.find("</script>").expect("close")];
            assert!(!json.contains('<'));
            let strings: std::collections::BTreeMap<String, String> = serde_json::from_str(json).expect("JSON strings");
            assert!(strings.contains_key("title.tasks"), "{want}");
        }
    }

    #[tokio::test]
    async fn a_page_maps_only_its_own_modules_and_allows_only_its_inline_scripts() {
        let web = Web::embedded();
        let r = get(&web, "/h5/", "identity").await;
        let csp = header_of(&r, header::CONTENT_SECURITY_POLICY);
        let html = body_of(r).await;
        let marker = "<script type=\"importmap\">";
        let map_start = html.find(marker).expect("map") + marker.len();
        let map = &html[map_start..map_start + html[map_start..].find("</script>").expect("end")];
        let map: serde_json::Value = serde_json::from_str(map).expect("map JSON");
        let mapped: Vec<&str> = map["imports"]
            .as_object()
            .expect("imports")
            .keys()
            .map(String::as_str)
            .collect();
        for wanted in [
            "/h5/assets/huoban.js",
            "/h5/assets/js/hub.js",
            "/h5/assets/js/chrome.js",
            // Loaded with import() after the page is interactive: mapped, not preloaded.
            "/h5/assets/components/goal-progress.js",
            "/h5/assets/components/nudge-banner.js",
            "/h5/assets/locales/en.json",
        ] {
            assert!(mapped.contains(&wanted), "{wanted} in {mapped:?}");
        }
        assert!(!mapped.contains(&"/h5/assets/components/reward-shelf.js"), "{mapped:?}");
        let goal = web.asset_url("components/goal-progress.js").expect("component");
        let head = &html[..html.find("</head>").expect("head")];
        assert!(
            !head.contains(&format!("href=\"{goal}\"")),
            "mapped but not preloaded with the page's own modules"
        );
        let chrome = web.asset_url("js/chrome.js").expect("chrome");
        assert!(head.contains(&format!("rel=\"modulepreload\" href=\"{chrome}\"")));
        // The hub asks for it at low priority, behind the requests it needs to be interactive.
        assert!(html.contains(&format!(
            "<link rel=\"modulepreload\" fetchpriority=\"low\" href=\"{goal}\">"
        )));
        // Every inline script that runs is allowed by its hash, and nothing else inline.
        use base64::Engine as _;
        let mut rest = html.as_str();
        let mut scripts = 0;
        while let Some(at) = rest.find("<script") {
            rest = &rest[at..];
            let open_end = rest.find('>').expect("tag");
            let tag = &rest[..open_end];
            let body = &rest[open_end + 1..rest.find("</script>").expect("close")];
            rest = &rest[open_end..];
            if tag.contains("src=") || tag.contains("application/json") {
                continue;
            }
            scripts += 1;
            let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()));
            assert!(csp.contains(&format!("'sha256-{hash}'")), "{tag} allowed by {csp}");
        }
        assert_eq!(scripts, 2, "the import map and the early fetch");
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .expect("script-src");
        assert!(!script_src.contains("unsafe-inline"), "{csp}");
    }

    /// The keys of the strings a page carries inline.
    async fn inline_keys(web: &Web, uri: &str) -> Vec<String> {
        let html = body_of(get(web, uri, "identity").await).await;
        let start = html.find("id=\"huoban-strings\"").expect("strings");
        let json = &html[start + html[start..].find('>').expect("open") + 1..];
        let json = &json[..json.find("</script>").expect("close")];
        let map: BTreeMap<String, String> = serde_json::from_str(json).expect("JSON strings");
        map.into_keys().collect()
    }

    #[tokio::test]
    async fn a_page_carries_only_the_strings_of_what_it_shows() {
        let web = Web::embedded();
        let all = {
            let raw = Embedded::get("locales/zh-CN.json").expect("locale");
            let map: BTreeMap<String, String> = serde_json::from_slice(&raw.data).expect("JSON");
            map.len()
        };
        let ns = |keys: &[String], ns: &str| keys.iter().any(|k| k.starts_with(&format!("{ns}.")));
        let hub = inline_keys(&web, "/h5/").await;
        for wanted in [
            "app", "a11y", "title", "nav", "prefs", "lang", "state", "error", "hub", "nudge", "goal",
        ] {
            assert!(ns(&hub, wanted), "the hub shows {wanted}.*");
        }
        // The goal page's cards, the wizard and the other pages' strings stay off the hub.
        for unwanted in ["auto", "convert", "wizard", "team", "invite", "sample", "gallery"] {
            assert!(!ns(&hub, unwanted), "the hub does not need {unwanted}.*");
        }
        assert!(hub.len() < all / 2, "{} of {all}", hub.len());
        // Keys built at run time keep their namespace: `"account.type." + type`, `"error." + slug`.
        let goal = inline_keys(&web, "/h5/goal").await;
        for wanted in ["auto", "convert", "wizard", "goal", "account", "reward", "error"] {
            assert!(ns(&goal, wanted), "the goal page shows {wanted}.*");
        }
        assert!(goal.contains(&"error.conversion-offer-unavailable".to_owned()));
        // The gallery shows every component, not the pages' own forms.
        let gallery = inline_keys(&web, "/h5/gallery").await;
        for wanted in [
            "auto",
            "convert",
            "team",
            "invite",
            "quiz",
            "leaderboard",
            "sample",
            "gallery",
        ] {
            assert!(ns(&gallery, wanted), "the gallery shows {wanted}.*");
        }
        assert!(!ns(&gallery, "signin"));
    }

    #[test]
    fn every_locale_has_the_same_keys() {
        let keys = |locale: &str| {
            let raw = Embedded::get(&format!("locales/{locale}.json")).expect("locale file");
            let map: std::collections::BTreeMap<String, String> = serde_json::from_slice(&raw.data).expect("JSON");
            map.into_keys().collect::<Vec<_>>()
        };
        let first = keys(LOCALES[0]);
        for locale in &LOCALES[1..] {
            assert_eq!(keys(locale), first, "{locale} has the keys of {}", LOCALES[0]);
        }
    }

    #[test]
    fn comment_lines_are_dropped_and_code_is_kept() {
        let js = "// header\n/** doc\n * more */\nconst a = `\n// inside a template\n/* also */\n`;\nconst b = 1; // trailing\n  /* one line */\nx();\n";
        assert_eq!(
            strip_comment_lines(js, true),
            "const a = `\n// inside a template\n/* also */\n`;\nconst b = 1; // trailing\nx();\n"
        );
        let css = "/* top\n   lines */\na { b: c; }\n/* one */\n.x::after { content: \"//\"; }\n";
        assert_eq!(
            strip_comment_lines(css, false),
            "a { b: c; }\n.x::after { content: \"//\"; }\n"
        );
        // The embedded SDK still imports and exports what it did.
        let sdk = embedded_files()
            .into_iter()
            .find(|(p, _)| p == "huoban.js")
            .expect("sdk")
            .1;
        let sdk = String::from_utf8_lossy(&sdk);
        assert!(!sdk.contains("\n// "), "comment lines gone");
        assert!(sdk.contains("export class HuobanElement") && sdk.contains("export function deviceId"));
    }

    #[test]
    fn dynamic_imports_are_found() {
        let src = "const a = import(\"../components/goal-progress.js\");\nawait import('./x.js'); import(variable);";
        assert_eq!(
            dynamic_imports("js/hub.js", src),
            vec!["components/goal-progress.js", "js/x.js"]
        );
    }

    #[test]
    fn static_imports_resolve_relative_to_the_module() {
        let src = "import { t } from \"../huoban.js\";\nimport \"../components/quiz.js\";\nimport { a } from './chrome.js';\nconst x = 1;";
        assert_eq!(
            imports("js/quiz.js", src),
            vec!["huoban.js", "components/quiz.js", "js/chrome.js"]
        );
    }

    #[tokio::test]
    async fn a_directory_is_read_on_every_request() {
        let dir = std::env::temp_dir().join(format!("huoban-web-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pages")).expect("dir");
        std::fs::write(dir.join("huoban.css"), "a{}").expect("css");
        std::fs::write(dir.join("pages/hub.html"), "<!--huoban:head-->v1").expect("page");
        let web = Web::from_dir(&dir);
        let first = web.asset_url("huoban.css").expect("css");
        std::fs::write(dir.join("huoban.css"), "b{}").expect("css");
        let second = web.asset_url("huoban.css").expect("css");
        assert_ne!(first, second, "an edit changes the hashed name");
        let r = get(&web, &second, "br").await;
        assert_eq!(header_of(&r, header::CACHE_CONTROL), NO_CACHE);
        assert_eq!(header_of(&r, header::CONTENT_ENCODING), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
