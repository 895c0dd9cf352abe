//! Headless Chromium through ChromeDriver (WebDriver), plus the helpers the
//! flows share: filling forms, computed styles, screenshots at a desktop and
//! a phone size, and axe-core accessibility checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::suite::Helper;

/// The two viewports every main page is photographed at.
pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/lib/chromium"),
        ]);
    dirs.flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROME_BIN") {
        return Some(PathBuf::from(p));
    }
    find_binary(&["chromium", "chromium-browser", "google-chrome"])
}

fn chromedriver() -> Option<PathBuf> {
    find_binary(&["chromedriver"])
}

/// axe-core's browser build, installed by `npm ci --prefix tests/browser`
/// (which `scripts/install-test-deps.sh` runs).
fn axe_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js")
}

/// Why the browser tests cannot run here (`None` when they can): Chromium,
/// ChromeDriver or axe-core is missing. See `tests/common/suite.rs` for what
/// follows.
pub fn missing() -> Option<String> {
    let (mut names, mut packages, mut installs) = (Vec::new(), Vec::new(), Vec::new());
    if chromium().is_none() {
        names.push("chromium");
        packages.push("chromium");
    }
    if chromedriver().is_none() {
        names.push("chromedriver");
        packages.push("chromium-driver");
    }
    if !packages.is_empty() {
        installs.push(format!("apt-get install {}", packages.join(" ")));
    }
    if !axe_path().is_file() {
        names.push("axe-core");
        installs.push("npm ci --prefix tests/browser".to_owned());
    }
    (!names.is_empty()).then(|| format!("{} not found; {}", names.join(", "), installs.join(", ")))
}

/// A ChromeDriver process on a free loopback port; killed when dropped.
/// Its directory holds the browsers' profiles.
pub struct Driver(Helper);

impl Driver {
    pub fn start() -> Driver {
        let (port, profiles) = Helper::prepare("browser");
        let child = Command::new(chromedriver().expect("chromedriver is installed"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        Driver(Helper::started(child, (port, profiles), 20, "chromedriver"))
    }

    /// A new browser session with a fresh profile (no shared cookies).
    pub async fn session(&self, name: &str) -> Browser {
        let profile = self.0.dir.join(name);
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium().unwrap(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                    // Custom domains of the tests (`*.test`) reach the test server.
                    "--host-resolver-rules=MAP *.test 127.0.0.1",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.0.port))
            .await
            .expect("start a Chromium session");
        let browser = Browser { client };
        browser.resize(DESKTOP).await;
        browser
    }
}

/// One browser session.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn close(self) {
        self.client.close().await.unwrap();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("no element {css:?} on {}: {e}", self.path().await),
        }
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap();
    }

    /// Clicks the button or link whose visible text is exactly `text`.
    pub async fn click_text(&self, text: &str) {
        let xpath = format!(
            "//*[self::button or self::a][normalize-space(.)='{text}' or @aria-label='{text}']"
        );
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(5))
            .for_element(Locator::XPath(&xpath))
            .await;
        match found {
            Ok(element) => element.click().await.unwrap(),
            Err(e) => panic!("no button or link {text:?} on {}: {e}", self.path().await),
        }
    }

    /// The text of the first element matching `css` (found again if the page
    /// was replaced under it, as after a form's redirect).
    pub async fn text(&self, css: &str) -> String {
        for _ in 0..50 {
            if let Ok(text) = self.find(css).await.text().await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the text of {css:?} could not be read on {}",
            self.path().await
        )
    }

    /// The page's visible text ("" while a page is being replaced).
    pub async fn body(&self) -> String {
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await;
        match text {
            Ok(Value::String(s)) => s,
            _ => String::new(),
        }
    }

    /// Waits until the page's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let body = self.body().await;
            if body.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on {}; the page says:\n{body}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the first element matching `css` contains `needle`.
    pub async fn wait_for_text_in(&self, css: &str, needle: &str) {
        let script = format!(
            "const el = document.querySelector({}); return el ? el.innerText : '';",
            json!(css)
        );
        for _ in 0..100 {
            if let Ok(Value::String(text)) = self.client.execute(&script, vec![]).await
                && text.contains(needle)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{needle:?} never appeared in {css:?} on {}",
            self.path().await
        );
    }

    /// The flash message shown after an action.
    pub async fn flash(&self) -> String {
        self.text(".flash").await
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// A computed style property of the first element matching `css`.
    pub async fn style(&self, css: &str, property: &str) -> String {
        self.find(css).await;
        let script = format!(
            "return getComputedStyle(document.querySelector({})).getPropertyValue({});",
            json!(css),
            json!(property)
        );
        self.js(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sets a field's value as a person would (an `input` event follows), for
    /// controls WebDriver cannot type into, such as `<input type="color">`.
    pub async fn set_value(&self, css: &str, value: &str) {
        self.find(css).await;
        let script = format!(
            "const el = document.querySelector({}); el.value = {}; \
             el.dispatchEvent(new Event('input', {{bubbles: true}})); \
             el.dispatchEvent(new Event('change', {{bubbles: true}}));",
            json!(css),
            json!(value)
        );
        self.js(&script).await;
    }

    /// Sets the viewport (not the window) to `size`.
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .js("return [window.innerWidth, window.innerHeight];")
            .await;
        let (iw, ih) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
        if (iw, ih) != (u64::from(width), u64::from(height)) {
            let w = width + (width - iw as u32);
            let h = height + (height - ih as u32);
            self.client.set_window_size(w, h).await.unwrap();
        }
    }

    /// Saves the current page at the desktop and the phone size as
    /// `target/screenshots/<name>-desktop.png` and `…-phone.png`.
    /// With `anchor`, the page is scrolled to that element first.
    pub async fn screenshots(&self, name: &str, anchor: Option<&str>) {
        let dir = screenshot_dir();
        let scroll = match anchor {
            Some(css) => format!(
                "document.querySelector({}).scrollIntoView({{block: 'start'}}); window.scrollBy(0, -16);",
                json!(css)
            ),
            None => "window.scrollTo(0, 0);".to_owned(),
        };
        for (label, size) in [("phone", PHONE), ("desktop", DESKTOP)] {
            self.resize(size).await;
            self.js(&format!(
                "{scroll} document.activeElement && document.activeElement.blur();"
            ))
            .await;
            // Let layout and images settle after the resize.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
    }

    /// Runs axe-core on the current page and fails on any serious or critical
    /// violation; lesser ones are reported on stderr.
    pub async fn axe(&self, page: &str) {
        let source = std::fs::read_to_string(axe_path()).unwrap();
        let loaded = self.js("return typeof window.axe;").await;
        if loaded != json!("object") {
            self.js(&source).await;
        }
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] })
              .then(r => done(r.violations.map(v => ({
                  id: v.id, impact: v.impact, help: v.help,
                  nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " — " + n.failureSummary)
              }))))
              .catch(e => done([{ id: "axe-error", impact: "critical", help: String(e), nodes: [] }]));
        "#;
        let violations = self.client.execute_async(script, vec![]).await.unwrap();
        let violations = violations.as_array().cloned().unwrap_or_default();
        let mut bad = Vec::new();
        for v in &violations {
            let impact = v["impact"].as_str().unwrap_or("unknown");
            let line = format!(
                "axe [{page}] {impact}: {} ({})\n    {}",
                v["help"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or(""),
                v["nodes"]
                    .as_array()
                    .map(|n| n
                        .iter()
                        .map(|s| s.as_str().unwrap_or("").replace('\n', " "))
                        .collect::<Vec<_>>()
                        .join("\n    "))
                    .unwrap_or_default()
            );
            eprintln!("{line}");
            if impact == "serious" || impact == "critical" {
                bad.push(line);
            }
        }
        assert!(
            bad.is_empty(),
            "axe found serious or critical issues:\n{}",
            bad.join("\n")
        );
    }

    /// Screenshots and axe for one of the main pages.
    pub async fn check_page(&self, name: &str) {
        self.check_page_at(name, None).await;
    }

    pub async fn check_page_at(&self, name: &str, anchor: Option<&str>) {
        self.axe(name).await;
        self.screenshots(name, anchor).await;
    }

    /// Presses Tab and returns the newly focused element's outline (width
    /// and style), which must be visible.
    pub async fn tab_and_focus_outline(&self) -> (String, String) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(&fantoccini::key::Key::Tab.to_string())
            .await
            .unwrap();
        let v = self
            .js("const s = getComputedStyle(document.activeElement); \
                 return [document.activeElement.id, s.outlineStyle, s.outlineWidth];")
            .await;
        (
            v[0].as_str().unwrap_or("").to_owned(),
            format!(
                "{} {}",
                v[1].as_str().unwrap_or(""),
                v[2].as_str().unwrap_or("")
            ),
        )
    }
}

pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `#rrggbb` → the `rgb(r, g, b)` a computed style reports.
pub fn rgb(hex: &str) -> String {
    let n = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    format!("rgb({}, {}, {})", n >> 16, (n >> 8) & 255, n & 255)
}

/// A small valid PNG logo (a ring in `color` on transparent), encoded by
/// hand: stored (uncompressed) deflate blocks, CRC-32 and Adler-32.
pub fn logo_png(size: u32, color: [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::new();
    let c = f64::from(size) / 2.0;
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            let d = ((f64::from(x) + 0.5 - c).powi(2) + (f64::from(y) + 0.5 - c).powi(2)).sqrt();
            let on = d < c * 0.95 && (d > c * 0.55 || d < c * 0.3);
            raw.extend_from_slice(&color);
            raw.push(if on { 255 } else { 0 });
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
